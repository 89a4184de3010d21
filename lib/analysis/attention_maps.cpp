#include "analysis/attention_maps.h"

namespace vitlab {

torch::Tensor mean_attention_distance(const torch::Tensor& attention, int64_t grid, double patch_pixels,
                                      int64_t prefix) {
  const auto a = attention.to(torch::kDouble).slice(2, prefix).slice(3, prefix);  // (B, H, N, N)
  const auto weights = a / a.sum(-1, true).clamp_min(1e-12);
  // Patch centres on the raster, row-major: (N, 2), and every pairwise distance in pixels.
  const auto idx = torch::arange(grid * grid, torch::kLong);
  const auto centres = torch::stack({idx.div(grid, "floor"), idx.remainder(grid)}, 1).to(torch::kDouble);
  const auto distance = torch::cdist(centres, centres) * patch_pixels;  // (N, N)
  return (weights * distance).sum(-1).mean(std::vector<int64_t>{0, 2});  // (H)
}

torch::Tensor attention_rollout(const std::vector<torch::Tensor>& layers) {
  TORCH_CHECK(!layers.empty(), "attention_rollout: no layers");
  torch::Tensor rollout;
  for (const auto& layer : layers) {
    auto a = layer.to(torch::kDouble).mean(1);                  // (B, T, T)
    a = a + torch::eye(a.size(1), a.options()).unsqueeze(0);    // the residual
    a = a / a.sum(-1, true);
    rollout = rollout.defined() ? a.bmm(rollout) : a;           // A'_l ... A'_1
  }
  return rollout;
}

torch::Tensor rollout_maps(const torch::Tensor& rollout, int64_t grid, int64_t prefix, bool class_token_pooled) {
  const int64_t b = rollout.size(0);
  auto patches = rollout.slice(2, prefix);  // (B, T, N): attention to the patches
  auto map = class_token_pooled && prefix > 0 ? patches.select(1, 0) : patches.slice(1, prefix).mean(1);
  map = map.reshape({b, grid, grid});
  return map / map.flatten(1).amax(1).clamp_min(1e-12).view({b, 1, 1});
}

torch::Tensor cosine_similarity_matrix(const torch::Tensor& table) {
  const auto t = table.to(torch::kDouble);
  const auto unit = t / t.norm(2, 1, true).clamp_min(1e-12);
  return unit.matmul(unit.t());
}

std::pair<torch::Tensor, torch::Tensor> principal_components(const torch::Tensor& x, int64_t k) {
  const auto centred = x.to(torch::kDouble) - x.to(torch::kDouble).mean(0, true);
  const auto covariance = centred.t().matmul(centred) / double(std::max<int64_t>(x.size(0) - 1, 1));
  auto [values, vectors] = at::linalg_eigh(covariance, "L");  // ascending
  k = std::min<int64_t>(k, values.size(0));
  auto top = vectors.flip(1).slice(1, 0, k).t().contiguous();  // (k, d)
  const auto flip = top.gather(1, top.abs().argmax(1, true)).sign();
  top = top * torch::where(flip == 0, torch::ones_like(flip), flip);
  const auto share = values.flip(0).slice(0, 0, k) / values.sum().clamp_min(1e-12);
  return {top, share};
}

}  // namespace vitlab
