#include "data/crop_transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

AxisWeights axis_weights(int64_t in, int64_t out) {
  const float scale = float(in) / float(out);
  const float support = scale >= 1.0f ? scale : 1.0f;
  const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  AxisWeights a;
  a.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(out);
  a.count.resize(out);
  a.weights.assign(out * a.taps, 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (i + 0.5));
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xsize =
        std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - xmin;
    float* w = &a.weights[i * a.taps];
    float total = 0.0f;
    for (int64_t j = 0; j < xsize; ++j) {
      const float x = static_cast<float>((j + xmin - center + 0.5) * invscale);
      w[j] = std::max(0.0f, 1.0f - std::abs(x));
      total += w[j];
    }
    if (total != 0.0f)
      for (int64_t j = 0; j < xsize; ++j) w[j] /= total;
    a.first[i] = xmin;
    a.count[i] = xsize;
  }
  return a;
}

namespace {

// Round half to even, as ATen's round(): adding and taking away 1.5 * 2^23 leaves the nearest
// integer in the float's mantissa (default rounding mode; no call to nearbyint per value).
uint8_t round_to_byte(float v) {
  constexpr float kShift = 12582912.0f;
  return static_cast<uint8_t>((std::clamp(v, 0.0f, 255.0f) + kShift) - kShift);
}

}  // namespace

CropBox scale_box(const CropBox& box, int64_t file_height, int64_t file_width, int64_t height,
                  int64_t width) {
  if (height == file_height && width == file_width) return box;
  const double sy = double(height) / double(file_height), sx = double(width) / double(file_width);
  CropBox b;
  b.top = std::min<int64_t>(height - 1, static_cast<int64_t>(std::floor(double(box.top) * sy)));
  b.left = std::min<int64_t>(width - 1, static_cast<int64_t>(std::floor(double(box.left) * sx)));
  b.height = std::clamp<int64_t>(std::llround(double(box.height) * sy), 1, height - b.top);
  b.width = std::clamp<int64_t>(std::llround(double(box.width) * sx), 1, width - b.left);
  return b;
}

torch::Tensor crop_resize(const torch::Tensor& hwc, const CropBox& box, int64_t out_height,
                          int64_t out_width, bool flip) {
  TORCH_CHECK(hwc.dim() == 3 && hwc.size(2) == 3 && hwc.scalar_type() == torch::kUInt8,
              "crop_resize: (H, W, 3) uint8");
  TORCH_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
                  box.top + box.height <= hwc.size(0) && box.left + box.width <= hwc.size(1),
              "crop_resize: box outside the image");
  auto crop = hwc.narrow(0, box.top, box.height).narrow(1, box.left, box.width);  // (h, w, C)
  if (box.height == out_height && box.width == out_width) {
    auto chw = crop.permute({2, 0, 1});  // (C, h, w)
    return (flip ? chw.flip({2}) : chw).contiguous();
  }
  // Plain loops rather than ATen's operators: this runs per image in every decoding thread.
  // Down the columns first, where each output row is a weighted sum of whole input rows (loops
  // the compiler vectorises); then along the rows, over out_height rows only. ATen goes along
  // the rows first: the float sums differ in the last bit, a tie of .5 can round the other way.
  const auto in = hwc.contiguous();
  constexpr int64_t c = 3;
  const int64_t w = box.width, row_stride = in.size(1) * c;
  const uint8_t* src = in.data_ptr<uint8_t>() + box.top * row_stride + box.left * c;
  const AxisWeights down = axis_weights(box.height, out_height), across = axis_weights(w, out_width);
  std::vector<float> rows(static_cast<size_t>(out_height * w * c), 0.0f);  // (out_h, w, C)
  for (int64_t y = 0; y < out_height; ++y) {
    float* dst = &rows[static_cast<size_t>(y * w * c)];
    for (int64_t j = 0; j < down.count[y]; ++j) {
      const float weight = down.weights[y * down.taps + j];
      const uint8_t* line = src + (down.first[y] + j) * row_stride;
      for (int64_t i = 0; i < w * c; ++i) dst[i] += weight * static_cast<float>(line[i]);
    }
  }
  auto out = torch::empty({c, out_height, out_width}, torch::kUInt8);  // (C, out_h, out_w)
  uint8_t* dst = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < out_height; ++y)
    for (int64_t x = 0; x < out_width; ++x) {
      const float* weights = &across.weights[x * across.taps];
      const float* line = &rows[static_cast<size_t>((y * w + across.first[x]) * c)];
      float v[c] = {0.0f, 0.0f, 0.0f};
      for (int64_t j = 0; j < across.count[x]; ++j)
        for (int64_t k = 0; k < c; ++k) v[k] += weights[j] * line[j * c + k];
      const int64_t col = flip ? out_width - 1 - x : x;
      for (int64_t k = 0; k < c; ++k)
        dst[(k * out_height + y) * out_width + col] = round_to_byte(v[k]);
    }
  return out;
}

}  // namespace vitlab
