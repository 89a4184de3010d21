#include "train/evaluate.h"

#include <algorithm>

#include "core/compat.h"
#include "core/cuda_util.h"

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

namespace {
// (sum of the cross-entropy in float64, count of correct top-1) of one batch.
std::pair<torch::Tensor, torch::Tensor> score_batch(ImageClassifierImpl& model,
                                                    const torch::Tensor& images,
                                                    const torch::Tensor& labels,
                                                    const Normalizer& normalize,
                                                    bool bf16_autocast) {
  torch::Tensor logits;
  {
    compat::CudaAutocast autocast(bf16_autocast);
    logits = model.forward(normalize(images));
  }
  logits = logits.to(torch::kFloat);  // (B, K)
  return {torch::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum).to(torch::kDouble),
          logits.argmax(1).eq(labels).sum()};
}
}  // namespace

struct EvalGraph::Impl {
  std::unique_ptr<cuda::Graph> graph;
  const ImageClassifierImpl* model = nullptr;
  bool bf16_autocast = false;
  torch::Tensor images, labels;  // the captured inputs, refilled before each replay
  torch::Tensor loss_sum, correct;  // the captured outputs
};

EvalGraph::EvalGraph() : impl_(std::make_unique<Impl>()) {}
EvalGraph::~EvalGraph() = default;

std::optional<std::pair<torch::Tensor, torch::Tensor>> EvalGraph::score(
    ImageClassifierImpl& model, const Batch& batch, const Normalizer& normalize,
    bool bf16_autocast) {
  auto& g = *impl_;
  if (!batch.images.is_cuda() || !cuda::built_with_cuda()) return std::nullopt;
  if (!g.graph) {
    g.model = &model;
    g.bf16_autocast = bf16_autocast;
    g.images = batch.images.clone();
    g.labels = batch.labels.clone();
    const auto device = batch.images.device();
    g.graph = std::make_unique<cuda::Graph>(/*thread_local_capture=*/true);
    g.graph->warm_up(device, [&] { score_batch(model, g.images, g.labels, normalize, bf16_autocast); });
    g.graph->capture(device, [&] {
      std::tie(g.loss_sum, g.correct) =
          score_batch(model, g.images, g.labels, normalize, bf16_autocast);
    });
  }
  const bool fits = g.model == &model && g.bf16_autocast == bf16_autocast &&
                    batch.images.sizes() == g.images.sizes() &&
                    batch.images.scalar_type() == g.images.scalar_type() &&
                    batch.images.strides() == g.images.strides() &&
                    batch.labels.sizes() == g.labels.sizes() &&
                    batch.images.device() == g.images.device();
  if (!fits) return std::nullopt;
  g.images.copy_(batch.images);
  g.labels.copy_(batch.labels);
  g.graph->replay();
  return std::make_pair(g.loss_sum, g.correct);
}

EvalResult evaluate_batches(ImageClassifierImpl& model, int64_t batches,
                            const std::function<Batch()>& next, const Normalizer& normalize,
                            bool bf16_autocast, torch::Device device, EvalGraph* graph) {
  EvalResult r;
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device));
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = next();
    auto scored = graph ? graph->score(model, b, normalize, bf16_autocast) : std::nullopt;
    if (!scored) scored = score_batch(model, b.images, b.labels, normalize, bf16_autocast);
    loss_sum += scored->first;  // on the device: no host sync per batch
    correct += scored->second;
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
                    const Normalizer& normalize, int64_t batch_size, bool bf16_autocast,
                    EvalGraph* graph) {
  if (data.size() == 0) return {};
  EpochBatches batches(data, forward_batch_size(data.device(), batch_size), /*shuffle=*/false,
                       /*drop_last=*/false);
  int64_t index = 0;
  return evaluate_batches(
      model, batches.size(), [&] { return batches.batch(index++); }, normalize, bf16_autocast,
      data.device(), graph);
}

}  // namespace vitlab
