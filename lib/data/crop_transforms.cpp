#include "data/crop_transforms.h"

#include <algorithm>
#include <cmath>

#include "data/random.h"

namespace vitlab {

CropBox random_resized_crop_box(int64_t height, int64_t width, const RandomResizedCropParams& p,
                                std::mt19937_64& rng) {
  TORCH_CHECK(height > 0 && width > 0, "random_resized_crop_box: empty image");
  const double area = double(height) * double(width);
  const double log_min = std::log(p.ratio_min), log_max = std::log(p.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (p.scale_min + (p.scale_max - p.scale_min) * uniform01(rng));
    const double ratio = std::exp(log_min + (log_max - log_min) * uniform01(rng));
    const auto w = static_cast<int64_t>(std::llround(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::llround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const auto top = static_cast<int64_t>(uniform_below(rng, uint64_t(height - h + 1)));
      const auto left = static_cast<int64_t>(uniform_below(rng, uint64_t(width - w + 1)));
      return {top, left, h, w};
    }
  }
  // Fallback: the largest central box whose ratio is within the range.
  const double in_ratio = double(width) / double(height);
  int64_t w = width, h = height;
  if (in_ratio < p.ratio_min)
    h = std::max<int64_t>(1, std::llround(double(w) / p.ratio_min));
  else if (in_ratio > p.ratio_max)
    w = std::max<int64_t>(1, std::llround(double(h) * p.ratio_max));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t size, double crop_pct) {
  TORCH_CHECK(height > 0 && width > 0 && size > 0 && crop_pct > 0,
              "center_crop_box: empty image or size");
  // timm: scale_size = floor(img_size / crop_pct); Resize(scale_size) scales the shorter side to
  // it (the longer one to int(scale_size * long / short)); CenterCrop(img_size) takes the middle,
  // its offset rounded as torchvision's int(round((resized - size) / 2)).
  const auto scaled = static_cast<int64_t>(std::floor(double(size) / crop_pct + 1e-9));
  const double factor =
      double(std::min(height, width)) / double(scaled);  // original px per resized px
  const int64_t resized_h = height <= width ? scaled : int64_t(double(scaled) * height / width);
  const int64_t resized_w = height <= width ? int64_t(double(scaled) * width / height) : scaled;
  // Python's round, to even on halves.
  const auto top = static_cast<int64_t>(std::nearbyint((resized_h - size) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((resized_w - size) / 2.0));
  const auto to_original = [&](double v) { return static_cast<int64_t>(std::llround(v * factor)); };
  CropBox box{to_original(double(top)), to_original(double(left)), to_original(double(size)),
              to_original(double(size))};
  box.height = std::clamp<int64_t>(box.height, 1, height - std::min(box.top, height - 1));
  box.width = std::clamp<int64_t>(box.width, 1, width - std::min(box.left, width - 1));
  box.top = std::min(box.top, height - box.height);
  box.left = std::min(box.left, width - box.width);
  return box;
}

torch::Tensor crop_resize(const torch::Tensor& hwc, const CropBox& box, int64_t out_height,
                          int64_t out_width, bool flip) {
  TORCH_CHECK(hwc.dim() == 3 && hwc.scalar_type() == torch::kUInt8, "crop_resize: (H, W, C) uint8");
  TORCH_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
                  box.top + box.height <= hwc.size(0) && box.left + box.width <= hwc.size(1),
              "crop_resize: box outside the image");
  auto crop = hwc.narrow(0, box.top, box.height).narrow(1, box.left, box.width);  // (h, w, C)
  auto chw = crop.permute({2, 0, 1});                                             // (C, h, w)
  if (box.height != out_height || box.width != out_width) {
    namespace F = torch::nn::functional;
    auto x = chw.unsqueeze(0).to(torch::kFloat);  // (1, C, h, w)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{out_height, out_width})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
    chw = x.squeeze(0).round().clamp(0, 255).to(torch::kUInt8);  // (C, out_h, out_w)
  }
  if (flip) chw = chw.flip({2});
  return chw.contiguous();
}

}  // namespace vitlab
