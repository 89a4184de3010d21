#include "models/pos_embed.h"

#include "models/layers.h"

namespace vitlab {

torch::Tensor sincos_2d_table(int64_t grid, int64_t width, double temperature) {
  const int64_t quarter = width / 4;
  auto omega = torch::arange(quarter, torch::kDouble) / static_cast<double>(quarter);
  omega = 1.0 / torch::pow(temperature, omega);  // (D/4)
  auto coords = torch::arange(grid, torch::kDouble);
  auto yy = coords.unsqueeze(1).expand({grid, grid}).reshape({-1});  // row index per patch
  auto xx = coords.unsqueeze(0).expand({grid, grid}).reshape({-1});  // column index per patch
  auto y = yy.unsqueeze(1) * omega.unsqueeze(0);                     // (N, D/4)
  auto x = xx.unsqueeze(1) * omega.unsqueeze(0);
  return torch::cat({torch::sin(x), torch::cos(x), torch::sin(y), torch::cos(y)}, 1)
      .to(torch::kFloat);  // (N, D)
}

PositionEmbeddingImpl::PositionEmbeddingImpl(PosEmbed kind, int64_t grid, int64_t width,
                                             int64_t extra_tokens)
    : kind(kind), grid(grid), width(width), extra_tokens(extra_tokens) {
  const int64_t n = grid * grid;
  switch (kind) {
    case PosEmbed::kLearned1d:
      pos_embed = register_parameter("pos_embed", torch::empty({1, extra_tokens + n, width}));
      trunc_normal_(pos_embed, 0.02);
      break;
    case PosEmbed::kLearned2d:
      row_embed = register_parameter("row_embed", torch::empty({grid, width / 2}));
      col_embed = register_parameter("col_embed", torch::empty({grid, width / 2}));
      trunc_normal_(row_embed, 0.02);
      trunc_normal_(col_embed, 0.02);
      if (extra_tokens > 0) {
        extra_embed = register_parameter("extra_embed", torch::empty({1, extra_tokens, width}));
        trunc_normal_(extra_embed, 0.02);
      }
      break;
    case PosEmbed::kSincos2d: {
      auto table = sincos_2d_table(grid, width);
      auto zeros = torch::zeros({extra_tokens, width});
      fixed = register_buffer("fixed", torch::cat({zeros, table}, 0).unsqueeze(0));
      break;
    }
    case PosEmbed::kNone:
    case PosEmbed::kRelative:
      break;
  }
}

torch::Tensor PositionEmbeddingImpl::table() {
  switch (kind) {
    case PosEmbed::kLearned1d:
      return pos_embed;
    case PosEmbed::kLearned2d: {
      // Patch (r, c) gets [row_embed[r], col_embed[c]]: rows vary slowest, as patches are
      // flattened.
      auto rows = row_embed.unsqueeze(1).expand({grid, grid, width / 2});           // (gh, gw, D/2)
      auto cols = col_embed.unsqueeze(0).expand({grid, grid, width / 2});           // (gh, gw, D/2)
      auto patches = torch::cat({rows, cols}, 2).reshape({1, grid * grid, width});  // (1, N, D)
      return extra_tokens > 0 ? torch::cat({extra_embed, patches}, 1) : patches;
    }
    case PosEmbed::kSincos2d:
      return fixed;
    default:
      return {};
  }
}

torch::Tensor PositionEmbeddingImpl::forward(const torch::Tensor& tokens) {
  auto t = table();
  // No cast: under bf16 autocast the fp32 table promotes the residual stream to fp32, as in timm.
  return t.defined() ? tokens + t : tokens;
}

}  // namespace vitlab
