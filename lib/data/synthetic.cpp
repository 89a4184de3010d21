#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "data/random.h"

namespace vitlab {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Plain loops with std::mt19937_64 (not torch::rand) so the images do not depend on the
// LibTorch version; generating is a one-off cost at load time.
Dataset make_split(const SyntheticSpec& spec, int64_t n, uint64_t stream, const std::string& name) {
  std::mt19937_64 rng(mix_seed(spec.seed, stream));
  const int k_count = spec.num_classes;
  const int64_t side = spec.image_size;
  const int channels = spec.channels;

  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % k_count;
  fisher_yates(labels, rng);

  Dataset d;
  d.images = torch::empty({n, channels, side, side}, torch::kUInt8);  // (N, C, H, W)
  uint8_t* out = d.images.data_ptr<uint8_t>();
  const double s = static_cast<double>(side);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = labels[i];
    const double theta = kPi * static_cast<double>(k) / k_count;  // stripe orientation
    const double period = s * (0.2 + 0.1 * static_cast<double>(k % 3));
    const double blob_angle = 2.0 * kPi * static_cast<double>(k) / k_count;
    const double phase = 2.0 * kPi * uniform01(rng);
    const double cx = s / 2 + 0.3 * s * std::cos(blob_angle) + (uniform01(rng) - 0.5) * 0.1 * s;
    const double cy = s / 2 + 0.3 * s * std::sin(blob_angle) + (uniform01(rng) - 0.5) * 0.1 * s;
    const double sigma = 0.12 * s + 0.5;
    for (int c = 0; c < channels; ++c) {
      // Multi-channel data gets a class-dependent colour for the blob.
      const double colour = channels == 1
                                ? 1.0
                                : 0.6 + 0.4 * std::cos(2.0 * kPi *
                                                       (static_cast<double>(k) / k_count +
                                                        static_cast<double>(c) / channels));
      for (int64_t y = 0; y < side; ++y) {
        for (int64_t x = 0; x < side; ++x) {
          const double along = x * std::cos(theta) + y * std::sin(theta);
          const double stripe = 0.5 + 0.5 * std::sin(2.0 * kPi * along / period + phase);
          const double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
          const double blob = std::exp(-r2 / (2.0 * sigma * sigma));
          const double noise = (uniform01(rng) - 0.5) * 0.16;
          const double v = 0.35 * stripe + 0.55 * blob * colour + noise;
          *out++ = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
        }
      }
    }
  }
  d.labels = torch::tensor(labels, torch::kInt64);
  d.num_classes = k_count;
  d.class_names = numbered_class_names(k_count);
  d.name = name;
  return d;
}

}  // namespace

DatasetSplits make_synthetic(const SyntheticSpec& spec) {
  if (spec.num_classes < 2 || spec.train_size < 1 || spec.test_size < 1 || spec.image_size < 1 ||
      spec.channels < 1)
    fail<ConfigError>(
        "synthetic data: need at least 2 classes, 1 image per split, size >= 1 and "
        "1 channel (got {} classes, {}/{} images, size {}, {} channels)",
        spec.num_classes, spec.train_size, spec.test_size, spec.image_size, spec.channels);
  DatasetSplits s;
  s.train = make_split(spec, spec.train_size, /*stream=*/101, "synthetic/train");
  s.test = make_split(spec, spec.test_size, /*stream=*/102, "synthetic/test");
  return s;
}

}  // namespace vitlab
