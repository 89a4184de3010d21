// Few-shot linear evaluation, the paper's cheap transfer metric (Sec. 4.1; big_vision's fewshot
// evaluator): frozen features (what the classifier head reads: the class token or the GAP, through
// the pre-logits layer when there is one), K training images per class, a closed-form
// L2-regularised least-squares fit onto {-1, 1} one-vs-all targets, and accuracy on the test set.
// The regulariser is chosen on held-out training images, never on the test set.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/json_reader.h"
#include "data/batcher.h"
#include "data/file_listing.h"
#include "data/stream_loader.h"
#include "models/classifier.h"

namespace vitlab {

struct FewShotOptions {
  std::vector<int64_t> shots;  // K values
  int seeds = 5;               // draws of the K images per class
  int64_t held_out = 1000;     // training images (not among the shots) that choose the regulariser
  int64_t batch_size = 512;    // feature extraction
  bool bf16 = false;           // CUDA autocast for feature extraction
  std::string source;          // the setting's name for messages ("train.fewshot.shots", "--fewshot")
};

struct FewShotRow {
  int64_t shots = 0;
  double mean = 0, std = 0;       // test accuracy over the draws, in [0, 1]; std is the sample std
  std::vector<double> accuracies;  // per draw
  std::vector<double> l2;          // the regulariser chosen per draw
};

struct FewShotResult {
  std::vector<FewShotRow> rows;  // in the order of FewShotOptions::shots
  int64_t feature_dim = 0;
  int64_t test_images = 0;
  Json to_json() const;          // {"shots": {"1": {"mean":..., "std":..., ...}, ...}, ...}
  std::string summary() const;   // "1-shot 41.2±3.0% 5-shot ..."
};

// ConfigError naming options.source when a K exceeds the smallest class of `labels` (N) int64.
void check_fewshot(const torch::Tensor& labels, int num_classes, const FewShotOptions& options);

// Features (N, F) and labels (N) in, the evaluation out: the pure part, on the CPU in float64.
// `train_*` is where the shots and the held-out images are drawn from.
FewShotResult fewshot_from_features(const torch::Tensor& train_features, const torch::Tensor& train_labels,
                                    const torch::Tensor& test_features, const torch::Tensor& test_labels,
                                    int num_classes, const FewShotOptions& options);

// The model's frozen features of the images that are needed, then fewshot_from_features. A K
// larger than the smallest class of `train` is a ConfigError naming options.source.
FewShotResult fewshot_evaluate(ImageClassifierImpl& model, const DeviceDataset& train,
                               const DeviceDataset& test, const Normalizer& normalize,
                               const FewShotOptions& options);

// The same for a streamed folder: the shots drawn from the `train` listing's labels, and only
// the drawn files and the `test` files decoded, with `options` (the evaluation crop), on
// `device`. A file that fails to decode is replaced by the stream's next one (with its label)
// and goes to `bad`.
FewShotResult fewshot_evaluate_streamed(ImageClassifierImpl& model, const FileListing& train,
                                        const FileListing& test, const StreamOptions& options,
                                        torch::Device device, const Normalizer& normalize,
                                        const FewShotOptions& few, BadImageLog* bad);

}  // namespace vitlab
