// Batch-wise augmentation on the training device. Random parameters (a few numbers per image)
// are drawn on the CPU from AugmentRng and moved to the device as small tensors; the pixel work
// is tensor ops on the whole batch.
//
// Exact resume at an epoch boundary needs no augmentation state: the trainer seeds a fresh
// AugmentRng for every epoch from the run's seed and the epoch (train/trainer.h: epoch_seed), and
// the epoch order is the pure function epoch_permutation(seed, epoch, n). A run stopped inside an
// epoch keeps the generator's state in its checkpoint (train/checkpoint.h: epoch_position).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <random>

#include "config/data_config.h"
#include "data/batcher.h"

namespace vitlab {

class AugmentRng {
 public:
  explicit AugmentRng(uint64_t seed = 0) : engine_(seed) {}

  double uniform();                                // [0, 1)
  int64_t uniform_int(int64_t low, int64_t high);  // [low, high], inclusive
  double beta(double a, double b);
  std::mt19937_64& engine() { return engine_; }
  const std::mt19937_64& engine() const { return engine_; }  // its state streams out as text

 private:
  std::mt19937_64 engine_;
};

// Random crop after zero padding by `padding`: per image an offset in [0, 2 padding]^2; the
// output has the input's shape. Any dtype, (B, C, H, W), on any device.
torch::Tensor random_crop(const torch::Tensor& images, int padding, AugmentRng& rng);
// The deterministic core: output[b] = padded[b, :, dy[b] : dy[b]+H, dx[b] : dx[b]+W].
// `dy`, `dx`: (B) int64 offsets in [0, 2 padding].
torch::Tensor crop_with_offsets(const torch::Tensor& images, int padding, const torch::Tensor& dy,
                                const torch::Tensor& dx);

// Flips each image left-right with probability `p`.
torch::Tensor random_flip(const torch::Tensor& images, double p, AugmentRng& rng);

// With probability `p` per image, sets one random rectangle (2%..33% of the area, aspect ratio
// 0.3..3.3, as in Zhong et al. / torchvision) to 0. Use on normalised float images, so 0 is the
// data set's mean.
torch::Tensor random_erasing(const torch::Tensor& images, double p, AugmentRng& rng);

// (B) int64 labels -> (B, num_classes) float one-hot.
torch::Tensor one_hot_targets(const torch::Tensor& labels, int num_classes);

struct Mixed {
  torch::Tensor images;   // (B, C, H, W) float
  torch::Tensor targets;  // (B, K) float, rows sum to 1
  double lambda = 1.0;    // weight of each image's own label
};

// Mixup: x = l x + (1 - l) x.flip(0), l ~ Beta(alpha, alpha); soft targets likewise.
Mixed mixup(const torch::Tensor& images, const torch::Tensor& labels, int num_classes, double alpha,
            AugmentRng& rng);
// CutMix: a box of area (1 - l) H W from x.flip(0) pasted into every image; l is then corrected
// to the box's clipped area.
Mixed cutmix(const torch::Tensor& images, const torch::Tensor& labels, int num_classes,
             double alpha, AugmentRng& rng);

// Soft targets for one batch: one-hot, or mixup/cutmix when enabled and drawn.
Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int classes,
                const AugmentConfig& a, AugmentRng& rng);

// The training pipeline for one batch: crop and flip on uint8, normalise, random erasing, then
// soft targets (mix_batch). Every random number comes from `rng`, in this order.
Mixed augment_batch(const Batch& b, const AugmentConfig& aug, const Normalizer& normalize,
                    int classes, AugmentRng& rng);

}  // namespace vitlab
