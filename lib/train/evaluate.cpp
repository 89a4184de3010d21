#include "train/evaluate.h"

#include <algorithm>

#include "core/compat.h"

namespace vitlab {

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                 double smoothing) {
  auto t = targets.to(torch::kFloat);
  if (smoothing > 0) t = t * (1.0 - smoothing) + smoothing / double(t.size(1));
  auto log_probs = torch::log_softmax(logits.to(torch::kFloat), 1);
  return -(t * log_probs).sum(1).mean();
}

int64_t forward_batch_size(const torch::Device& device, int64_t batch_size) {
  constexpr int64_t kCpuForwardBatch = 64;
  return device.is_cpu() ? std::min(batch_size, kCpuForwardBatch) : batch_size;
}

EvalResult evaluate(ImageClassifierImpl& model, const DeviceDataset& data, const Normalizer& normalize,
                    int64_t batch_size, bool bf16_autocast) {
  EvalResult r;
  if (data.size() == 0) return r;
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(data.device()));
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(data.device()));
  EpochBatches batches(data, forward_batch_size(data.device(), batch_size), /*shuffle=*/false,
                       /*drop_last=*/false);
  for (const Batch& b : batches) {
    torch::Tensor logits;
    {
      compat::CudaAutocast autocast(bf16_autocast);
      logits = model.forward(normalize(b.images));
    }
    logits = logits.to(torch::kFloat);
    loss_sum += torch::cross_entropy_loss(logits, b.labels, {}, at::Reduction::Sum).to(torch::kDouble);
    correct += logits.argmax(1).eq(b.labels).sum();
  }
  r.count = data.size();
  r.loss = loss_sum.item<double>() / double(r.count);
  r.accuracy = double(correct.item<int64_t>()) / double(r.count);
  model.train(was_training);
  return r;
}

}  // namespace vitlab
