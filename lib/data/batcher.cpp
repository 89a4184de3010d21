#include "data/batcher.h"

#include <numeric>
#include <random>

#include "data/random.h"

namespace vitlab {
namespace {

// Separates the epoch-order stream from other users of the same run seed.
constexpr uint64_t kEpochOrderStream = 0x0e90c4;

}  // namespace

DeviceDataset::DeviceDataset(const Dataset& data, torch::Device device)
    : images_(data.images.to(device).contiguous()),
      labels_(data.labels.to(device, torch::kInt64).contiguous()),
      num_classes_(data.num_classes),
      device_(device) {
  TORCH_CHECK(images_.dim() == 4 && images_.scalar_type() == torch::kUInt8,
              "DeviceDataset expects (N, C, H, W) uint8 images");
  TORCH_CHECK(labels_.dim() == 1 && labels_.size(0) == images_.size(0),
              "DeviceDataset: labels do not match the images");
}

Batch DeviceDataset::gather(const torch::Tensor& indices) const {
  return {images_.index_select(0, indices), labels_.index_select(0, indices), indices};
}

std::vector<int64_t> epoch_permutation_indices(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(mix_seed(mix_seed(seed, kEpochOrderStream), static_cast<uint64_t>(epoch)));
  fisher_yates(order, rng);
  return order;
}

torch::Tensor epoch_permutation(uint64_t seed, int64_t epoch, int64_t n, torch::Device device) {
  return torch::tensor(epoch_permutation_indices(seed, epoch, n), torch::kInt64).to(device);
}

int64_t batches_per_epoch(int64_t n, int64_t batch_size, bool drop_last) {
  TORCH_CHECK(batch_size > 0, "batch size must be positive");
  return drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
}

EpochBatches::EpochBatches(const DeviceDataset& data, int64_t batch_size, bool shuffle,
                           bool drop_last, uint64_t seed, int64_t epoch)
    : data_(data),
      batch_size_(batch_size),
      num_batches_(batches_per_epoch(data.size(), batch_size, drop_last)) {
  // One small host-to-device copy per epoch; batches then slice it on the device.
  order_ = shuffle ? epoch_permutation(seed, epoch, data.size(), data.device())
                   : torch::arange(data.size(), torch::dtype(torch::kInt64).device(data.device()));
}

Batch EpochBatches::batch(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < num_batches_, "batch ", index, " of ", num_batches_);
  const int64_t start = index * batch_size_;
  const int64_t count = std::min(batch_size_, data_.size() - start);
  return data_.gather(order_.narrow(0, start, count));
}

Normalizer::Normalizer(const std::vector<double>& mean, const std::vector<double>& std,
                       torch::Device device) {
  TORCH_CHECK(!mean.empty() && mean.size() == std.size(), "Normalizer: mean has ", mean.size(),
              " values, std ", std.size());
  const int64_t c = static_cast<int64_t>(mean.size());
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = static_cast<float>(1.0 / (255.0 * std[i]));
    shift[i] = static_cast<float>(-mean[i] / std[i]);
  }
  scale_ = torch::tensor(scale).view({1, c, 1, 1}).to(device);  // (1, C, 1, 1)
  shift_ = torch::tensor(shift).view({1, c, 1, 1}).to(device);
}

torch::Tensor Normalizer::operator()(const torch::Tensor& batch) const {
  TORCH_CHECK(batch.dim() == 4 && batch.size(1) == channels(), "Normalizer: a batch of shape ",
              batch.sizes(), " for ", channels(), " channels");
  return torch::addcmul(shift_, batch.to(torch::kFloat), scale_);  // shift + x * scale
}

torch::Tensor normalize(const torch::Tensor& batch, const std::vector<double>& mean,
                        const std::vector<double>& std) {
  return Normalizer(mean, std, batch.device())(batch);
}

}  // namespace vitlab
