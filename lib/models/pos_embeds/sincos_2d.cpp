// Fixed 2-D sine-cosine position embedding (big_vision's posemb_sincos_2d), zeros for prefix
// tokens. A buffer, not a parameter: nothing to learn or decay.
#include <fmt/format.h>

#include "models/parts.h"

namespace vitlab {
namespace {

struct Sincos2dImpl : PositionEmbeddingImpl {
  explicit Sincos2dImpl(const ModelConfig& c) {
    auto table = sincos_2d_table(c.grid_size(), c.width);
    auto zeros = torch::zeros({int64_t(c.num_prefix_tokens()), int64_t(c.width)});
    fixed = register_buffer("fixed", torch::cat({zeros, table}, 0).unsqueeze(0));
  }
  torch::Tensor table() override { return fixed; }
  torch::Tensor fixed;  // (1, prefix + N, D)
};

}  // namespace

PositionEmbeddingPart sincos_2d_embedding() {
  return {"sincos_2d", "fixed 2-D sine-cosine table (big_vision's posemb_sincos_2d)",
          [](const ModelConfig& c) -> PositionEmbeddingModule {
            return std::make_shared<Sincos2dImpl>(c);
          },
          nullptr, [](const ModelConfig& c, const PartError& bad) {
            if (c.width % 4 != 0)
              bad("pos_embed", fmt::format("sincos_2d needs width divisible by 4, got {}", c.width));
          }};
}

}  // namespace vitlab
