// Learned 2-D position embedding (Appendix D.4): a row table and a column table of width D/2;
// patch (r, c) gets [row_embed[r], col_embed[c]]. Prefix tokens (the class token) get a vector
// of their own.
#include <fmt/format.h>

#include "models/layers.h"
#include "models/parts.h"

namespace vitlab {
namespace {

struct Learned2dImpl : PositionEmbeddingImpl {
  explicit Learned2dImpl(const ModelConfig& c) : grid(c.grid_size()), width(c.width) {
    row_embed = register_parameter("row_embed", new_parameter({grid, width / 2}));
    col_embed = register_parameter("col_embed", new_parameter({grid, width / 2}));
    trunc_normal_(row_embed, 0.02);
    trunc_normal_(col_embed, 0.02);
    if (c.num_prefix_tokens() > 0) {
      extra_embed =
          register_parameter("extra_embed", new_parameter({1, c.num_prefix_tokens(), width}));
      trunc_normal_(extra_embed, 0.02);
    }
  }
  torch::Tensor table() override {
    // Rows vary slowest, as patches are flattened.
    auto rows = row_embed.unsqueeze(1).expand({grid, grid, width / 2});           // (gh, gw, D/2)
    auto cols = col_embed.unsqueeze(0).expand({grid, grid, width / 2});           // (gh, gw, D/2)
    auto patches = torch::cat({rows, cols}, 2).reshape({1, grid * grid, width});  // (1, N, D)
    return extra_embed.defined() ? torch::cat({extra_embed, patches}, 1) : patches;
  }
  int64_t grid, width;
  torch::Tensor row_embed, col_embed;  // (grid, D/2)
  torch::Tensor extra_embed;           // (1, prefix, D)
};

}  // namespace

PositionEmbeddingPart learned_2d_embedding() {
  return {"learned_2d", "learned row and column tables of width D/2, concatenated per patch",
          [](const ModelConfig& c) -> PositionEmbeddingModule {
            return std::make_shared<Learned2dImpl>(c);
          },
          nullptr, [](const ModelConfig& c, const PartError& bad) {
            if (c.width % 2 != 0)
              bad("pos_embed", fmt::format("learned_2d splits the width into row and column "
                                           "halves; width {} is odd",
                                           c.width));
          }};
}

}  // namespace vitlab
