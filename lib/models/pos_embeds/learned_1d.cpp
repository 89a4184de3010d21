// Learned 1-D position embedding: one vector per sequence position (the paper's default), with
// timm's name and layout (`pos_embed`, (1, prefix + N, D)).
#include "models/layers.h"
#include "models/parts.h"

namespace vitlab {
namespace {

struct Learned1dImpl : PositionEmbeddingImpl {
  explicit Learned1dImpl(const ModelConfig& c) {
    const int64_t rows = c.num_prefix_tokens() + c.num_patches();
    pos_embed = register_parameter("pos_embed", new_parameter({1, rows, int64_t(c.width)}));
    trunc_normal_(pos_embed, 0.02);
  }
  torch::Tensor table() override { return pos_embed; }
  torch::Tensor pos_embed;  // (1, prefix + N, D)
};

}  // namespace

PositionEmbeddingPart learned_1d_embedding() {
  return {"learned_1d", "a learned vector per sequence position (timm's pos_embed)",
          [](const ModelConfig& c) -> PositionEmbeddingModule {
            return std::make_shared<Learned1dImpl>(c);
          },
          nullptr, nullptr};
}

}  // namespace vitlab
