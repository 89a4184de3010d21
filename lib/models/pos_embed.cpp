#include "models/pos_embed.h"

namespace vitlab {

torch::Tensor PositionEmbeddingImpl::forward(const torch::Tensor& tokens) {
  auto t = table();
  // No cast: under bf16 autocast the fp32 table promotes the residual stream to fp32, as in timm.
  return t.defined() ? tokens + t : tokens;
}

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

}  // namespace vitlab
