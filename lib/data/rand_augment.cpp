#include "data/rand_augment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "config/json_reader.h"
#include "data/random.h"

namespace vitlab {
namespace {

using Lut = std::array<uint8_t, 256>;
constexpr double kMaxLevel = 10;  // timm's _MAX_LEVEL

uint8_t clip8(double v) {
  return static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
}

// PIL's RGB -> L: (R 19595 + G 38470 + B 7471 + 2^15) >> 16.
uint8_t luma(const uint8_t* p) {
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

torch::Tensor apply_luts(const torch::Tensor& hwc, const std::array<Lut, 3>& luts) {
  auto out = hwc.clone();
  uint8_t* p = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = luts[i % 3][p[i]];
  return out;
}

std::array<Lut, 3> same_lut(const Lut& lut) {
  return {lut, lut, lut};
}

std::array<std::array<int64_t, 256>, 3> histograms(const torch::Tensor& hwc) {
  std::array<std::array<int64_t, 256>, 3> h{};
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  for (int64_t i = 0; i < hwc.numel(); ++i) ++h[i % 3][p[i]];
  return h;
}

// ImageOps.autocontrast (cutoff 0): each channel's lowest and highest values stretched to 0-255.
Lut autocontrast_lut(const std::array<int64_t, 256>& h) {
  Lut lut;
  int lo = 0, hi = 255;
  while (lo < 255 && h[lo] == 0) ++lo;
  while (hi > 0 && h[hi] == 0) --hi;
  const double scale = hi > lo ? 255.0 / (hi - lo) : 1.0, offset = hi > lo ? -lo * scale : 0.0;
  for (int i = 0; i < 256; ++i) lut[i] = clip8(std::trunc(i * scale + offset));
  return lut;
}

// ImageOps.equalize: step = (pixels - count of the highest value present) // 255, and value i
// maps to (step // 2 + pixels below i) // step.
Lut equalize_lut(const std::array<int64_t, 256>& h) {
  Lut lut;
  int64_t total = 0, last = 0, present = 0;
  for (int i = 0; i < 256; ++i)
    if (h[i]) total += h[i], last = h[i], ++present;
  const int64_t step = present > 1 ? (total - last) / 255 : 0;
  int64_t n = step / 2;
  for (int i = 0; i < 256; ++i) {
    lut[i] =
        step ? static_cast<uint8_t>(std::min<int64_t>(255, n / step)) : static_cast<uint8_t>(i);
    n += h[i];
  }
  return lut;
}

// Image.blend(degenerate, image, factor), as ImageEnhance does: d + f (x - d), cut to 0-255 and
// rounded down.
torch::Tensor blend(const torch::Tensor& degenerate, const torch::Tensor& image, double factor) {
  auto out = torch::empty_like(image);
  const uint8_t *d = degenerate.data_ptr<uint8_t>(), *x = image.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < image.numel(); ++i)
    o[i] = clip8(std::trunc(d[i] + factor * (x[i] - d[i])));
  return out;
}

torch::Tensor grey(const torch::Tensor& hwc) {  // L, replicated to RGB
  auto out = torch::empty_like(hwc);
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < hwc.numel(); i += 3) o[i] = o[i + 1] = o[i + 2] = luma(p + i);
  return out;
}

// ImageFilter.SMOOTH (3x3: 1 around, 5 in the middle, / 13), the border kept as it is.
torch::Tensor smooth(const torch::Tensor& hwc) {
  auto out = hwc.clone();
  const int64_t h = hwc.size(0), w = hwc.size(1);
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t y = 1; y + 1 < h; ++y)
    for (int64_t x = 1; x + 1 < w; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 4 * p[(y * w + x) * 3 + c];
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) sum += p[((y + dy) * w + x + dx) * 3 + c];
        o[(y * w + x) * 3 + c] = clip8(std::floor(sum / 13.0 + 0.5));
      }
  return out;
}

// Image.transform(AFFINE, (a, b, c, d, e, f)): output pixel (x, y) samples the input at
// (a X + b Y + c, d X + e Y + f) with X, Y its centre (x + 0.5, y + 0.5); bilinearly between
// the nearest pixel centres (edge pixels repeated), rounded down; `fill` where that point is
// outside the image.
torch::Tensor affine(const torch::Tensor& hwc, const std::array<double, 6>& m,
                     const std::array<uint8_t, 3>& fill) {
  const int64_t h = hwc.size(0), w = hwc.size(1);
  auto out = torch::empty_like(hwc);
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  const auto at = [&](int64_t y, int64_t x, int c) {
    return double(
        p[(std::clamp<int64_t>(y, 0, h - 1) * w + std::clamp<int64_t>(x, 0, w - 1)) * 3 + c]);
  };
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const double xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
      const double yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
      uint8_t* px = o + (y * w + x) * 3;
      if (xin < 0 || xin >= double(w) || yin < 0 || yin >= double(h)) {
        std::copy(fill.begin(), fill.end(), px);
        continue;
      }
      const double fx = xin - 0.5, fy = yin - 0.5;
      const auto x0 = static_cast<int64_t>(std::floor(fx)),
                 y0 = static_cast<int64_t>(std::floor(fy));
      const double dx = fx - double(x0), dy = fy - double(y0);
      for (int c = 0; c < 3; ++c) {
        const double top = at(y0, x0, c) + (at(y0, x0 + 1, c) - at(y0, x0, c)) * dx;
        const double bottom = at(y0 + 1, x0, c) + (at(y0 + 1, x0 + 1, c) - at(y0 + 1, x0, c)) * dx;
        px[c] = clip8(std::trunc(top + (bottom - top) * dy));
      }
    }
  return out;
}

// Image.rotate(degrees) about the centre, counter-clockwise, the size kept.
torch::Tensor rotate(const torch::Tensor& hwc, double degrees, const std::array<uint8_t, 3>& fill) {
  const double a = -degrees * M_PI / 180.0, cx = double(hwc.size(1)) / 2,
               cy = double(hwc.size(0)) / 2;
  std::array<double, 6> m = {std::cos(a), std::sin(a), 0.0, -std::sin(a), std::cos(a), 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  return affine(hwc, m, fill);
}

torch::Tensor lut_op(const torch::Tensor& hwc, RandOp op, double level) {
  Lut lut;
  for (int i = 0; i < 256; ++i) {
    if (op == RandOp::kInvert) lut[i] = static_cast<uint8_t>(255 - i);
    if (op == RandOp::kPosterize) {  // keep the top int(level / 10 * 4) bits
      const int bits = static_cast<int>(level / kMaxLevel * 4);
      lut[i] =
          bits >= 8 ? static_cast<uint8_t>(i) : static_cast<uint8_t>(i & ~((1 << (8 - bits)) - 1));
    }
    if (op == RandOp::kSolarize) {  // invert from int(level / 10 * 256) up
      const int threshold = static_cast<int>(level / kMaxLevel * 256);
      lut[i] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
    }
    if (op == RandOp::kSolarizeAdd) {  // add int(level / 10 * 110) below 128
      const int add = static_cast<int>(level / kMaxLevel * 110);
      lut[i] = static_cast<uint8_t>(i < 128 ? std::min(255, i + add) : i);
    }
  }
  return apply_luts(hwc, same_lut(lut));
}

torch::Tensor enhance(const torch::Tensor& hwc, RandOp op, double level) {
  const double factor = level / kMaxLevel * 1.8 + 0.1;
  if (op == RandOp::kColor) return blend(grey(hwc), hwc, factor);
  if (op == RandOp::kBrightness) return blend(torch::zeros_like(hwc), hwc, factor);
  if (op == RandOp::kSharpness) return blend(smooth(hwc), hwc, factor);
  // Contrast: against the mean of the L image, rounded.
  const auto l = grey(hwc).select(2, 0);
  const double mean = std::floor(l.to(torch::kDouble).mean().item<double>() + 0.5);
  return blend(torch::full_like(hwc, mean), hwc, factor);
}

}  // namespace

const std::vector<std::pair<RandOp, std::string>>& rand_ops() {
  static const std::vector<std::pair<RandOp, std::string>> ops = {
      {RandOp::kAutoContrast, "AutoContrast"},
      {RandOp::kEqualize, "Equalize"},
      {RandOp::kInvert, "Invert"},
      {RandOp::kRotate, "Rotate"},
      {RandOp::kPosterize, "Posterize"},
      {RandOp::kSolarize, "Solarize"},
      {RandOp::kSolarizeAdd, "SolarizeAdd"},
      {RandOp::kColor, "Color"},
      {RandOp::kContrast, "Contrast"},
      {RandOp::kBrightness, "Brightness"},
      {RandOp::kSharpness, "Sharpness"},
      {RandOp::kShearX, "ShearX"},
      {RandOp::kShearY, "ShearY"},
      {RandOp::kTranslateXRel, "TranslateXRel"},
      {RandOp::kTranslateYRel, "TranslateYRel"}};
  return ops;
}

torch::Tensor apply_rand_op(const torch::Tensor& image, RandOp op, double level, bool negate,
                            const RandAugmentConfig& c) {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
              "RandAugment: (H, W, 3) uint8 images");
  const auto hwc = image.contiguous();
  const double sign = negate ? -1.0 : 1.0;
  const double w = double(hwc.size(1)), h = double(hwc.size(0));
  switch (op) {
    case RandOp::kAutoContrast: {
      const auto hist = histograms(hwc);
      return apply_luts(
          hwc, {autocontrast_lut(hist[0]), autocontrast_lut(hist[1]), autocontrast_lut(hist[2])});
    }
    case RandOp::kEqualize: {
      const auto hist = histograms(hwc);
      return apply_luts(hwc, {equalize_lut(hist[0]), equalize_lut(hist[1]), equalize_lut(hist[2])});
    }
    case RandOp::kInvert:
    case RandOp::kPosterize:
    case RandOp::kSolarize:
    case RandOp::kSolarizeAdd:
      return lut_op(hwc, op, level);
    case RandOp::kColor:
    case RandOp::kContrast:
    case RandOp::kBrightness:
    case RandOp::kSharpness:
      return enhance(hwc, op, level);
    case RandOp::kRotate:
      return rotate(hwc, sign * level / kMaxLevel * 30.0, c.fill);
    case RandOp::kShearX:
      return affine(hwc, {1, sign * level / kMaxLevel * 0.3, 0, 0, 1, 0}, c.fill);
    case RandOp::kShearY:
      return affine(hwc, {1, 0, 0, sign * level / kMaxLevel * 0.3, 1, 0}, c.fill);
    case RandOp::kTranslateXRel:
      return affine(hwc, {1, 0, sign * level / kMaxLevel * c.translate_pct * w, 0, 1, 0}, c.fill);
    case RandOp::kTranslateYRel:
      return affine(hwc, {1, 0, 0, 0, 1, sign * level / kMaxLevel * c.translate_pct * h}, c.fill);
  }
  return hwc;
}

torch::Tensor rand_augment(const torch::Tensor& hwc, const RandAugmentConfig& c,
                           std::mt19937_64& rng) {
  torch::Tensor out = hwc;
  const auto& ops = rand_ops();
  for (int k = 0; k < c.num_ops; ++k) {
    const RandOp op = ops[uniform_below(rng, ops.size())].first;
    if (c.prob < 1.0 && uniform01(rng) > c.prob) continue;
    double level = c.magnitude;
    if (std::isinf(c.magnitude_std))
      level = c.magnitude * uniform01(rng);
    else if (c.magnitude_std > 0)
      level += c.magnitude_std * standard_normal(rng);
    level = std::clamp(level, 0.0, c.magnitude_max);
    const bool negate = uniform01(rng) > 0.5;  // timm's _randomly_negate, for the signed ones
    out = apply_rand_op(out, op, level, negate, c);
  }
  return out;
}

}  // namespace vitlab
