// Batch-wise augmentation on the training device. Random parameters (a few numbers per image)
// are drawn on the CPU from AugmentRng and moved to the device as small tensors; the pixel work
// is tensor ops on the whole batch.
//
// Exact resume: the only augmentation state is AugmentRng. The trainer saves AugmentRng::state()
// at the same batch boundary as the model/optimiser, together with the epoch and batch index
// (the epoch order is the pure function epoch_permutation(seed, epoch, n)), and calls
// set_state() on resume; the following batches are then augmented bit-identically.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <string>

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

  // The engine's full state as text (a few KB; save it in the checkpoint). set_state() throws
  // IoError for text that state() did not produce.
  std::string state() const;
  void set_state(const std::string& state);

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

struct AugmentedBatch {
  torch::Tensor images;   // (B, C, H, W) float, normalised
  torch::Tensor targets;  // (B, K) float soft targets (one-hot when not mixed)
  torch::Tensor labels;   // (B) int64 original labels
  bool mixed = false;
};

// The training pipeline: crop and flip on uint8, normalise, random erasing, then (with
// probability mix_prob) mixup or cutmix - both enabled: each batch picks one with probability 1/2.
class Augmenter {
 public:
  Augmenter(const AugmentConfig& config, Normalizer normalizer, int num_classes);

  AugmentedBatch train(const Batch& batch, AugmentRng& rng) const;
  // Evaluation: normalisation only.
  torch::Tensor eval(const Batch& batch) const { return normalizer_(batch.images); }

  const Normalizer& normalizer() const { return normalizer_; }

 private:
  AugmentConfig config_;
  Normalizer normalizer_;
  int num_classes_;
};

}  // namespace vitlab
