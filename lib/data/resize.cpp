#include "data/resize.h"

#include <algorithm>

namespace vitlab {

torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8,
              "resize_images expects (N, C, H, W) uint8");
  TORCH_CHECK(height > 0 && width > 0, "resize_images: target size must be positive");
  if (images.size(2) == height && images.size(3) == width) return images;
  const int64_t n = images.size(0);
  torch::Tensor out = torch::empty({n, images.size(1), height, width}, images.options());
  if (n == 0) return out;
  namespace F = torch::nn::functional;
  const auto options = F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{height, width})
                           .mode(torch::kBilinear)
                           .align_corners(false);
  // ~64 MiB of float per chunk: bounded memory whatever the data set size.
  const int64_t pixels = std::max<int64_t>(1, images[0].numel() + out[0].numel());
  const int64_t chunk = std::max<int64_t>(1, (int64_t{16} << 20) / pixels);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t count = std::min(chunk, n - start);
    torch::Tensor part = images.narrow(0, start, count).to(torch::kFloat);  // (B, C, H, W)
    part = F::interpolate(part, options);                                   // (B, C, h, w)
    out.narrow(0, start, count).copy_(part.round_().clamp_(0, 255).to(torch::kUInt8));
  }
  return out;
}

}  // namespace vitlab
