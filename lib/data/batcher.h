// Device-resident data and epoch batching. Small data sets live WHOLE on the training device as
// one uint8 tensor; a batch is an index_select there, so the hot path has no per-sample CPU work
// and no host-to-device image copies.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace vitlab {

struct Batch {
  torch::Tensor images;   // (B, C, H, W) uint8, on the device
  torch::Tensor labels;   // (B) int64, on the device
  torch::Tensor indices;  // (B) int64 rows of the DeviceDataset, on the device
};

class DeviceDataset {
 public:
  DeviceDataset() = default;
  // Copies the images and labels to `device` once.
  DeviceDataset(const Dataset& data, torch::Device device);

  int64_t size() const { return labels_.defined() ? labels_.size(0) : 0; }
  int num_classes() const { return num_classes_; }
  torch::Device device() const { return device_; }
  const torch::Tensor& images() const { return images_; }  // (N, C, H, W) uint8
  const torch::Tensor& labels() const { return labels_; }  // (N) int64

  // The rows `indices` ((B) int64, on the device).
  Batch gather(const torch::Tensor& indices) const;

 private:
  torch::Tensor images_;
  torch::Tensor labels_;
  int num_classes_ = 0;
  torch::Device device_ = torch::kCPU;
};

// The order of epoch `epoch`: a permutation of 0..n-1 that depends only on (seed, epoch, n), so
// training can resume mid-epoch on any machine. Computed on the CPU with std::mt19937_64 and our
// own Fisher-Yates (independent of the LibTorch version).
std::vector<int64_t> epoch_permutation_indices(uint64_t seed, int64_t epoch, int64_t n);
// The same as an int64 tensor on `device`.
torch::Tensor epoch_permutation(uint64_t seed, int64_t epoch, int64_t n,
                                torch::Device device = torch::kCPU);

// Batches in an epoch of n items: floor(n / b) when dropping the last partial batch, else ceil.
int64_t batches_per_epoch(int64_t n, int64_t batch_size, bool drop_last);

// One epoch's batches, with random access so a resumed run can start at any batch index.
// Training: EpochBatches(data, b, /*shuffle=*/true, /*drop_last=*/true, seed, epoch).
// Evaluation: EpochBatches(data, b, false, false) - every item once, in order.
class EpochBatches {
 public:
  EpochBatches(const DeviceDataset& data, int64_t batch_size, bool shuffle, bool drop_last,
               uint64_t seed = 0, int64_t epoch = 0);

  int64_t size() const { return num_batches_; }  // number of batches
  Batch batch(int64_t index) const;              // 0 <= index < size()

  class Iterator {
   public:
    Iterator(const EpochBatches* owner, int64_t index) : owner_(owner), index_(index) {}
    Batch operator*() const { return owner_->batch(index_); }
    Iterator& operator++() {
      ++index_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    const EpochBatches* owner_;
    int64_t index_;
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, num_batches_}; }

 private:
  DeviceDataset data_;
  torch::Tensor order_;  // (N) int64 on the device
  int64_t batch_size_;
  int64_t num_batches_;
};

// uint8 (B, C, H, W) -> float (B, C, H, W): (x / 255 - mean[c]) / std[c]. Holds the constants
// on the device so a batch costs one fused multiply-add.
class Normalizer {
 public:
  Normalizer() = default;
  Normalizer(const std::vector<double>& mean, const std::vector<double>& std, torch::Device device);
  torch::Tensor operator()(const torch::Tensor& batch) const;
  int64_t channels() const { return scale_.defined() ? scale_.size(1) : 0; }

 private:
  torch::Tensor scale_;  // (1, C, 1, 1) = 1 / (255 std)
  torch::Tensor shift_;  // (1, C, 1, 1) = -mean / std
};

// One-off form of Normalizer (builds the constants on the batch's device each call).
torch::Tensor normalize(const torch::Tensor& batch, const std::vector<double>& mean,
                        const std::vector<double>& std);

}  // namespace vitlab
