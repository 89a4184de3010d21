// Evaluation: top-1 accuracy and mean cross-entropy over a device-resident data set.
#pragma once
#include "data/batcher.h"
#include "models/classifier.h"

namespace vitlab {

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // fraction in [0, 1]
  int64_t count = 0;
};

// Runs the model in eval mode (restoring its previous mode) over every item once.
EvalResult evaluate(ImageClassifierImpl& model, const DeviceDataset& data, const Normalizer& normalize,
                    int64_t batch_size, bool bf16_autocast);

// Cross-entropy against soft targets (B, K), computed in fp32; with label smoothing `smoothing`
// the targets are mixed with the uniform distribution first (as PyTorch's label_smoothing).
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                 double smoothing);

}  // namespace vitlab
