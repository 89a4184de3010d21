// What a train step minimises (train.objective) and how it is scored: the class labels
// (supervised), or masked patch prediction (models/masked_patch.h), which needs no labels.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

#include "config/run_config.h"
#include "data/batcher.h"
#include "models/classifier.h"
#include "models/masked_patch.h"
#include "train/evaluate.h"

namespace vitlab {

// The model a run trains: the factory's, with the masked-patch head when the objective needs it.
ImageClassifier build_run_model(const RunConfig& config);

struct ObjectiveOutput {
  torch::Tensor loss;     // () float, on the device
  torch::Tensor logits;   // (B, K) class logits (supervised)
  torch::Tensor correct;  // () int64: right predictions (masked patch: corrupted patches whose
                          // colour class is right); undefined where the labels score them
  torch::Tensor scored;   // () int64: how many predictions `correct` is out of
};

// The masked-patch loss over the corrupted patches only: cross-entropy over the colour classes
// (with label smoothing `smoothing`), or the mean squared error for the L2 targets; `correct` and
// `scored` count the corrupted patches (correct only for colour classes).
ObjectiveOutput masked_patch_loss(const MaskedPatchPrediction& prediction, const torch::Tensor& targets,
                                  const MaskedPatchConfig& config, double smoothing);

class TrainObjective {
 public:
  // `mean` and `std`: the data's normalisation, which the colour targets undo (empty for the
  // supervised objective).
  TrainObjective(const TrainConfig& config, const std::vector<double>& mean, const std::vector<double>& std,
            torch::Device device);
  // The loss of a batch: images normalised (B, C, H, W), targets soft (B, K) (supervised only).
  ObjectiveOutput operator()(ImageClassifierImpl& model, const torch::Tensor& images,
                             const torch::Tensor& targets) const;
  bool supervised() const { return kind_ == Kind::kSupervised; }
  // Whether the objective has an accuracy (the L2 masked-patch targets have none).
  bool has_accuracy() const;
  const char* name() const;  // "supervised" | "masked_patch"

 private:
  enum class Kind { kSupervised, kMaskedPatch };
  Kind kind_;
  TrainConfig config_;
  torch::Tensor mean_, std_;  // (C) float on the device
};

// The masked-patch loss and accuracy in eval mode over `batches` batches that `next` hands out
// in turn, with corruptions drawn from `seed` (the same draws every epoch, so epochs compare),
// under the run's precision. accuracy is NaN for L2 targets.
EvalResult evaluate_masked_batches(ImageClassifierImpl& model, int64_t batches,
                                   const std::function<Batch()>& next,
                                   const Normalizer& normalize, const TrainObjective& objective,
                                   uint64_t seed, torch::Device device);

// The same over a data set in batches of `batch_size`.
EvalResult evaluate_masked_patches(ImageClassifierImpl& model, const DeviceDataset& data,
                                   const Normalizer& normalize, const TrainObjective& objective,
                                   int64_t batch_size, uint64_t seed);

// The same over a streamed folder's part (`files`), decoded with `options` (the evaluation crop)
// in the listing's order: the batches, so the draws, of the in-memory set of the same images.
// Bad files go to `bad`.
EvalResult evaluate_masked_streamed(ImageClassifierImpl& model, const FileListing& files,
                                    const StreamOptions& options, const Normalizer& normalize,
                                    const TrainObjective& objective, int64_t batch_size,
                                    uint64_t seed, torch::Device device, BadImageLog* bad);

}  // namespace vitlab
