// Evaluation: top-1 accuracy and mean cross-entropy over a device-resident data set.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "data/batcher.h"
#include "data/file_listing.h"
#include "data/stream_loader.h"
#include "models/classifier.h"

namespace vitlab {

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // fraction in [0, 1]
  int64_t count = 0;
};

// How many images one no-grad forward takes when `batch_size` are asked for on `device`: on the
// CPU at most 64. A large batch's activations stream through memory instead of staying in the
// cache: bit_r26_28 inference on the 2-core Debian machine ran 172 img/s at batch 64 and 63 img/s
// at 512 (`vitlab bench --mode infer --precision fp32`). Sums over a data set do not depend on it.
int64_t forward_batch_size(const torch::Device& device, int64_t batch_size);

// An evaluation's forward of one batch shape captured as a CUDA graph and replayed for every
// batch of that shape: a small model's forward is bound by launching its kernels from the host,
// as its train step was before that was captured. A run keeps one for its evaluations (its
// memory pool stays reserved meanwhile); the first batch warms up and captures. The replays
// compute what the eager forwards compute (tests/test_fast_path.cpp).
class EvalGraph {
 public:
  EvalGraph();
  ~EvalGraph();
  EvalGraph(const EvalGraph&) = delete;
  EvalGraph& operator=(const EvalGraph&) = delete;
  // (sum of the cross-entropy in float64, count of correct top-1) of one batch, through the graph
  // when it fits (the same model, autocast and batch shape as captured; captured on first use);
  // nullopt when it does not, and the caller runs the forward eagerly.
  std::optional<std::pair<torch::Tensor, torch::Tensor>> score(ImageClassifierImpl& model,
                                                               const Batch& batch,
                                                               const Normalizer& normalize,
                                                               bool bf16_autocast);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the model in eval mode (restoring its previous mode) over every item once, in batches of
// forward_batch_size(batch_size); with `graph`, CUDA batches of the captured shape replay it.
EvalResult evaluate(ImageClassifierImpl& model, const DeviceDataset& data,
                    const Normalizer& normalize, int64_t batch_size, bool bf16_autocast,
                    EvalGraph* graph = nullptr);

// The same over `batches` batches that `next` hands out in turn (a streamed folder's test split).
EvalResult evaluate_batches(ImageClassifierImpl& model, int64_t batches,
                            const std::function<Batch()>& next, const Normalizer& normalize,
                            bool bf16_autocast, torch::Device device, EvalGraph* graph = nullptr);

// A streamed folder's part (`files`) decoded with `options` (the evaluation crop) on `device`, in
// batches of forward_batch_size(batch_size). Share `share` of `shares` takes a contiguous part
// of the files (data-parallel ranks, whose sums the caller adds up). Bad files go to `bad`.
EvalResult evaluate_streamed(ImageClassifierImpl& model, const FileListing& files,
                             const StreamOptions& options, int64_t batch_size,
                             const Normalizer& normalize, bool bf16_autocast, torch::Device device,
                             BadImageLog* bad, int share = 0, int shares = 1);

// Cross-entropy against soft targets (B, K), computed in fp32; with label smoothing `smoothing`
// the targets are mixed with the uniform distribution first (as PyTorch's label_smoothing).
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                 double smoothing);

}  // namespace vitlab
