#include "data/augment.h"

#include <algorithm>
#include <cmath>

#include "data/random.h"

namespace vitlab {
namespace {

// A (rows, B) int64 CPU table of per-image parameters -> the same on `device`, one copy.
torch::Tensor params_to_device(const std::vector<int64_t>& values, int64_t rows, int64_t batch,
                               torch::Device device) {
  return torch::tensor(values, torch::kInt64).view({rows, batch}).to(device);
}

void check_images(const torch::Tensor& images, const char* what) {
  TORCH_CHECK(images.dim() == 4, what, " expects (B, C, H, W) images, got ", images.sizes());
}

}  // namespace

// --- AugmentRng --------------------------------------------------------------------------------

double AugmentRng::uniform() {
  return uniform01(engine_);
}

int64_t AugmentRng::uniform_int(int64_t low, int64_t high) {
  TORCH_CHECK(high >= low, "uniform_int: empty range");
  return low + static_cast<int64_t>(uniform_below(engine_, static_cast<uint64_t>(high - low) + 1));
}

double AugmentRng::beta(double a, double b) {
  return beta_draw(engine_, a, b);
}

// --- geometric augmentations (any dtype) ---------------------------------------------------------

torch::Tensor crop_with_offsets(const torch::Tensor& images, int padding, const torch::Tensor& dy,
                                const torch::Tensor& dx) {
  check_images(images, "crop_with_offsets");
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t p = padding;
  const torch::Tensor padded =
      torch::constant_pad_nd(images, {p, p, p, p}, 0);  // (B, C, H+2p, W+2p)
  const auto index_options = torch::dtype(torch::kInt64).device(images.device());
  const torch::Tensor rows =
      dy.to(images.device()).view({b, 1}) + torch::arange(h, index_options).view({1, h});  // (B, H)
  const torch::Tensor cols =
      dx.to(images.device()).view({b, 1}) + torch::arange(w, index_options).view({1, w});  // (B, W)
  // Two gathers instead of a per-image loop: rows first, then columns.
  const torch::Tensor picked_rows =
      padded.gather(2, rows.view({b, 1, h, 1}).expand({b, c, h, w + 2 * p}));  // (B, C, H, W+2p)
  return picked_rows.gather(3, cols.view({b, 1, 1, w}).expand({b, c, h, w}));  // (B, C, H, W)
}

torch::Tensor random_crop(const torch::Tensor& images, int padding, AugmentRng& rng) {
  check_images(images, "random_crop");
  if (padding <= 0) return images;
  const int64_t b = images.size(0);
  std::vector<int64_t> offsets(static_cast<size_t>(2 * b));  // row 0: dy, row 1: dx
  for (int64_t i = 0; i < b; ++i) {
    offsets[i] = rng.uniform_int(0, 2 * padding);
    offsets[b + i] = rng.uniform_int(0, 2 * padding);
  }
  const torch::Tensor table = params_to_device(offsets, 2, b, images.device());  // (2, B)
  return crop_with_offsets(images, padding, table[0], table[1]);
}

torch::Tensor random_flip(const torch::Tensor& images, double p, AugmentRng& rng) {
  check_images(images, "random_flip");
  const int64_t b = images.size(0);
  std::vector<int64_t> flip(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) flip[i] = rng.uniform() < p ? 1 : 0;
  const torch::Tensor mask =
      params_to_device(flip, 1, b, images.device()).view({b, 1, 1, 1}).to(torch::kBool);
  return torch::where(mask, images.flip({3}), images);
}

torch::Tensor random_erasing(const torch::Tensor& images, double p, AugmentRng& rng) {
  check_images(images, "random_erasing");
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  const double area = static_cast<double>(h * w);
  // Rows: top, left, height, width (height = width = 0: not erased).
  std::vector<int64_t> boxes(static_cast<size_t>(4 * b), 0);
  bool any = false;
  for (int64_t i = 0; i < b; ++i) {
    if (rng.uniform() >= p) continue;
    for (int attempt = 0; attempt < 10; ++attempt) {  // torchvision's retry rule
      const double target = area * (0.02 + (0.33 - 0.02) * rng.uniform());
      const double ratio =
          std::exp(std::log(0.3) + (std::log(3.3) - std::log(0.3)) * rng.uniform());
      const int64_t eh = std::llround(std::sqrt(target * ratio));
      const int64_t ew = std::llround(std::sqrt(target / ratio));
      if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
      boxes[i] = rng.uniform_int(0, h - eh);
      boxes[b + i] = rng.uniform_int(0, w - ew);
      boxes[2 * b + i] = eh;
      boxes[3 * b + i] = ew;
      any = true;
      break;
    }
  }
  if (!any) return images;
  const torch::Tensor t = params_to_device(boxes, 4, b, images.device());  // (4, B)
  const auto index_options = torch::dtype(torch::kInt64).device(images.device());
  const torch::Tensor ys = torch::arange(h, index_options).view({1, h, 1});  // (1, H, 1)
  const torch::Tensor xs = torch::arange(w, index_options).view({1, 1, w});  // (1, 1, W)
  const torch::Tensor top = t[0].view({b, 1, 1}), left = t[1].view({b, 1, 1});
  const torch::Tensor inside = (ys >= top) & (ys < top + t[2].view({b, 1, 1})) & (xs >= left) &
                               (xs < left + t[3].view({b, 1, 1}));  // (B, H, W)
  return images.masked_fill(inside.unsqueeze(1), 0);                // (B, C, H, W)
}

// --- label mixing --------------------------------------------------------------------------------

torch::Tensor one_hot_targets(const torch::Tensor& labels, int num_classes) {
  // scatter_ instead of torch::one_hot: no range check, so no device synchronisation.
  const int64_t b = labels.size(0);
  return torch::zeros({b, num_classes}, torch::dtype(torch::kFloat).device(labels.device()))
      .scatter_(1, labels.view({b, 1}), 1.0);  // (B, K)
}

Mixed mixup(const torch::Tensor& images, const torch::Tensor& labels, int num_classes, double alpha,
            AugmentRng& rng) {
  check_images(images, "mixup");
  const double lambda = rng.beta(alpha, alpha);
  const torch::Tensor targets = one_hot_targets(labels, num_classes);
  // Partner of image i is image B-1-i (the batch is already in random order).
  return {images * lambda + images.flip({0}) * (1.0 - lambda),
          targets * lambda + targets.flip({0}) * (1.0 - lambda), lambda};
}

Mixed cutmix(const torch::Tensor& images, const torch::Tensor& labels, int num_classes,
             double alpha, AugmentRng& rng) {
  check_images(images, "cutmix");
  const int64_t h = images.size(2), w = images.size(3);
  const double drawn = rng.beta(alpha, alpha);
  const double cut_ratio = std::sqrt(1.0 - drawn);
  const int64_t cut_h = static_cast<int64_t>(static_cast<double>(h) * cut_ratio);
  const int64_t cut_w = static_cast<int64_t>(static_cast<double>(w) * cut_ratio);
  const int64_t cy = rng.uniform_int(0, h - 1), cx = rng.uniform_int(0, w - 1);
  const int64_t y1 = std::clamp<int64_t>(cy - cut_h / 2, 0, h);
  const int64_t y2 = std::clamp<int64_t>(cy + cut_h / 2, 0, h);
  const int64_t x1 = std::clamp<int64_t>(cx - cut_w / 2, 0, w);
  const int64_t x2 = std::clamp<int64_t>(cx + cut_w / 2, 0, w);
  // The box may be clipped at the border: the label weight follows the pixels actually pasted.
  const double lambda =
      1.0 - static_cast<double>((y2 - y1) * (x2 - x1)) / static_cast<double>(h * w);
  torch::Tensor out = images.clone();
  if (y2 > y1 && x2 > x1)
    out.narrow(2, y1, y2 - y1)
        .narrow(3, x1, x2 - x1)
        .copy_(images.flip({0}).narrow(2, y1, y2 - y1).narrow(3, x1, x2 - x1));
  const torch::Tensor targets = one_hot_targets(labels, num_classes);
  return {out, targets * lambda + targets.flip({0}) * (1.0 - lambda), lambda};
}

Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int classes,
                const AugmentConfig& a, AugmentRng& rng) {
  const bool mixup_on = a.mixup_alpha > 0, cutmix_on = a.cutmix_alpha > 0;
  if ((mixup_on || cutmix_on) && rng.uniform() < a.mix_prob) {
    const bool use_cutmix = cutmix_on && (!mixup_on || rng.uniform() < 0.5);
    return use_cutmix ? cutmix(images, labels, classes, a.cutmix_alpha, rng)
                      : mixup(images, labels, classes, a.mixup_alpha, rng);
  }
  return {images, one_hot_targets(labels, classes), 1.0};
}

Mixed augment_batch(const Batch& b, const AugmentConfig& aug, const Normalizer& normalize,
                    int classes, AugmentRng& rng) {
  auto x = b.images;
  if (aug.crop_padding > 0) x = random_crop(x, aug.crop_padding, rng);
  if (aug.flip) x = random_flip(x, 0.5, rng);
  auto xf = normalize(x);
  if (aug.random_erasing > 0) xf = random_erasing(xf, aug.random_erasing, rng);
  return mix_batch(xf, b.labels, classes, aug, rng);
}

}  // namespace vitlab
