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

EvalResult evaluate_batches(ImageClassifierImpl& model, int64_t batches,
                            const std::function<Batch()>& next, const Normalizer& normalize,
                            bool bf16_autocast, torch::Device device) {
  EvalResult r;
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device));
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = next();
    torch::Tensor logits;
    {
      compat::CudaAutocast autocast(bf16_autocast);
      logits = model.forward(normalize(b.images));
    }
    logits = logits.to(torch::kFloat);
    loss_sum +=
        torch::cross_entropy_loss(logits, b.labels, {}, at::Reduction::Sum).to(torch::kDouble);
    correct += logits.argmax(1).eq(b.labels).sum();
    r.count += b.labels.size(0);
  }
  model.train(was_training);
  if (r.count == 0) return r;
  r.loss = loss_sum.item<double>() / double(r.count);
  r.accuracy = double(correct.item<int64_t>()) / double(r.count);
  return r;
}

EvalResult evaluate_streamed(ImageClassifierImpl& model, const FileListing& files,
                             const StreamOptions& options, int64_t batch_size,
                             const Normalizer& normalize, bool bf16_autocast, torch::Device device,
                             BadImageLog* bad, int share, int shares) {
  const int64_t n = files.size();
  BatchStream stream(files, listing_plan(n * share / shares, n * (share + 1) / shares),
                     forward_batch_size(device, batch_size),
                     /*drop_last=*/false, 0, 0, options, device, bad);
  return evaluate_batches(model, stream.size(), [&] { return stream.next(); }, normalize,
                          bf16_autocast, device);
}

EvalResult evaluate(ImageClassifierImpl& model, const DeviceDataset& data,
                    const Normalizer& normalize, int64_t batch_size, bool bf16_autocast) {
  if (data.size() == 0) return {};
  EpochBatches batches(data, forward_batch_size(data.device(), batch_size), /*shuffle=*/false,
                       /*drop_last=*/false);
  int64_t index = 0;
  return evaluate_batches(
      model, batches.size(), [&] { return batches.batch(index++); }, normalize, bf16_autocast,
      data.device());
}

}  // namespace vitlab
