#include "models/masked_patch.h"

#include <cmath>

#include "core/error.h"
#include "models/init.h"

namespace vitlab {

int64_t MaskedPatchGeometry::outputs() const {
  switch (target) {
    case MaskedPatchTarget::kMeanColor: return MaskedPatchConfig::color_classes(channels);
    case MaskedPatchTarget::kDownsized4x4: return 16 * channels;
    case MaskedPatchTarget::kFullPatch: return region * region * channels;
  }
  return 0;
}

MaskedPatchGeometry masked_patch_geometry(const ModelConfig& model, const MaskedPatchConfig& config) {
  MaskedPatchGeometry g;
  g.grid = model.grid_size();
  g.region = g.grid > 0 ? model.image_size / g.grid : 0;
  g.channels = model.in_channels;
  g.target = config.target;
  return g;
}

torch::Tensor masked_patch_targets(const torch::Tensor& images, const MaskedPatchGeometry& g,
                                   const torch::Tensor& mean, const torch::Tensor& std) {
  const int64_t b = images.size(0), c = images.size(1);
  const auto x = images.to(torch::kFloat);  // (B, C, H, W)
  // Each token's region: the grid x grid cells of side `region` (the hybrid's feature-map cells
  // cover the same image area; pooling tolerates an image a few pixels larger than grid*region).
  auto cells = [&](int64_t per_side) {  // (B, N, C * per_side^2), row-major over the grid
    auto pooled = torch::adaptive_avg_pool2d(x, {g.grid * per_side, g.grid * per_side});
    return pooled.reshape({b, c, g.grid, per_side, g.grid, per_side})
        .permute({0, 2, 4, 1, 3, 5})
        .reshape({b, g.grid * g.grid, c * per_side * per_side});
  };
  switch (g.target) {
    case MaskedPatchTarget::kMeanColor: {
      // The mean colour in [0, 1] pixel units, 3 bits per channel, the first channel most
      // significant: class = sum_c bin_c 8^(C-1-c).
      auto pixels = x * std.view({1, c, 1, 1}) + mean.view({1, c, 1, 1});
      auto mean_color = torch::adaptive_avg_pool2d(pixels, {g.grid, g.grid})
                            .flatten(2)
                            .transpose(1, 2);  // (B, N, C)
      auto bins = (mean_color * 8.0).floor().clamp(0, 7).to(torch::kLong);
      auto place = torch::pow(8, torch::arange(c - 1, -1, -1, bins.options()));  // (C)
      return (bins * place).sum(2);  // (B, N)
    }
    case MaskedPatchTarget::kDownsized4x4: return cells(4);
    case MaskedPatchTarget::kFullPatch: return cells(g.region);
  }
  return {};
}

MaskedPatchHeadImpl::MaskedPatchHeadImpl(const ModelConfig& model, const MaskedPatchConfig& c)
    : config(c), geometry(masked_patch_geometry(model, c)) {
  if (geometry.grid <= 0 || geometry.region <= 0)
    fail<ConfigError>("model \"{}\": the masked-patch objective needs patch tokens", model.name);
  mask_token = register_parameter("mask_token", new_parameter({model.width}));
  trunc_normal_(mask_token, 0.02);  // as BEiT's and timm's mask tokens
  norm = register_module("norm", LayerNorm(model.width, model.layer_norm_eps));
  proj = register_module("proj", Linear(model.width, geometry.outputs()));
  trunc_normal_(proj->weight, 0.02);
  constant_(proj->bias, 0.0);
}

CorruptedPatches MaskedPatchHeadImpl::corrupt(const torch::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
  const auto on = torch::TensorOptions().device(x.device());
  // Exactly round(rate N) patches of every image (at least one): the k largest of N uniforms.
  const int64_t k = std::max<int64_t>(1, std::llround(config.corruption_rate * double(n)));
  const auto picked = std::get<1>(torch::rand({b, n}, on).topk(k, 1));      // (B, k)
  auto chosen = torch::zeros({b, n}, on.dtype(torch::kBool)).scatter(1, picked, true);  // (B, N)
  // Of those, 80% [mask], 10% another patch of the batch, 10% unchanged (one uniform each).
  auto u = torch::rand({b, n}, on);
  auto to_mask = chosen & (u < config.mask_share);
  auto to_other = chosen & (u >= config.mask_share) & (u < config.mask_share + config.random_share);
  auto other = x.reshape({b * n, d})
                   .index_select(0, torch::randint(b * n, {b * n}, on.dtype(torch::kLong)))
                   .view({b, n, d});  // (B, N, D)
  auto mask = mask_token.to(x.scalar_type()).expand({b, n, d});
  auto out = torch::where(to_mask.unsqueeze(2), mask, torch::where(to_other.unsqueeze(2), other, x));
  return CorruptedPatches{out, chosen};
}

torch::Tensor MaskedPatchHeadImpl::forward(const torch::Tensor& tokens) {
  return proj->forward(norm->forward(tokens));  // (B, N, D) -> (B, N, outputs)
}

}  // namespace vitlab
