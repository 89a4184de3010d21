#include "analysis/png.h"

#include "core/atomic_file.h"
#include "core/error.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // private to this file (a test writes its own PNG fixtures with stb)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace vitlab {
namespace {
void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
}  // namespace

void write_png(const std::string& path, const torch::Tensor& rgb) {
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == torch::kByte, "write_png: not (H, W, 3) uint8");
  const auto pixels = rgb.contiguous().cpu();
  std::string bytes;
  const int w = int(pixels.size(1)), h = int(pixels.size(0));
  if (!stbi_write_png_to_func(append_bytes, &bytes, w, h, 3, pixels.data_ptr<uint8_t>(), w * 3))
    fail<IoError>("{}: could not encode the PNG", path);
  write_file_atomic(path, bytes);
}

torch::Tensor viridis(const torch::Tensor& values) {
  // matplotlib's viridis at 0, 1/8, ..., 1.
  static const float stops[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                    {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                    {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  const auto table = torch::from_blob(const_cast<float*>(&stops[0][0]), {9, 3}, torch::kFloat).clone();
  const auto x = values.to(torch::kFloat).clamp(0, 1) * 8;
  const auto low = x.floor().clamp_max(7).to(torch::kLong);
  const auto w = (x - low.to(torch::kFloat)).unsqueeze(-1);
  const auto a = table.index({low}), b = table.index({low + 1});
  return (a * (1 - w) + b * w).round().to(torch::kByte);
}

torch::Tensor enlarge(const torch::Tensor& rgb, int64_t factor) {
  return rgb.repeat_interleave(factor, 0).repeat_interleave(factor, 1);
}

torch::Tensor tile_images(const std::vector<torch::Tensor>& tiles, int64_t columns, int64_t gap) {
  TORCH_CHECK(!tiles.empty() && columns > 0, "tile_images: no tiles");
  const int64_t h = tiles[0].size(0), w = tiles[0].size(1);
  const int64_t n = int64_t(tiles.size()), rows = (n + columns - 1) / columns, cols = std::min(columns, n);
  auto canvas = torch::full({rows * (h + gap) + gap, cols * (w + gap) + gap, 3}, 255, torch::kByte);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = gap + (i / columns) * (h + gap), x = gap + (i % columns) * (w + gap);
    canvas.slice(0, y, y + h).slice(1, x, x + w).copy_(tiles[size_t(i)]);
  }
  return canvas;
}

torch::Tensor to_rgb(const torch::Tensor& image) {
  auto x = image.to(torch::kFloat).cpu();
  x = x.size(0) >= 3 ? x.slice(0, 0, 3) : x.slice(0, 0, 1).expand({3, x.size(1), x.size(2)});
  const auto low = x.min(), high = x.max();
  x = (x - low) / (high - low).clamp_min(1e-12);
  return (x * 255).round().to(torch::kByte).permute({1, 2, 0}).contiguous();
}

}  // namespace vitlab
