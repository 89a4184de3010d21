#include "train/objective.h"

#include <cmath>
#include <functional>
#include <limits>

#include "core/compat.h"
#include "models/factory.h"
#include "models/vit.h"

namespace vitlab {
namespace {

ViTImpl& masked_patch_model(ImageClassifierImpl& model) {
  auto* vit = dynamic_cast<ViTImpl*>(&model);
  if (!vit || !vit->masked_patch)
    throw ConfigError(fmt::format("train.objective: \"masked_patch\" needs a ViT or hybrid model "
                                  "with patch tokens; \"{}\" has none",
                                  model.config().name));
  return *vit;
}

}  // namespace

ObjectiveOutput masked_patch_loss(const MaskedPatchPrediction& p, const torch::Tensor& targets,
                                  const MaskedPatchConfig& config, double smoothing) {
  ObjectiveOutput out;
  const auto weight = p.corrupted.to(torch::kFloat);  // (B, N)
  const auto scored = weight.sum();
  const auto predictions = p.predictions.to(torch::kFloat);
  torch::Tensor per_patch;  // (B, N)
  if (config.target == MaskedPatchTarget::kMeanColor) {
    const int64_t classes = predictions.size(2);
    per_patch = torch::nn::functional::cross_entropy(
                    predictions.reshape({-1, classes}), targets.reshape({-1}),
                    torch::nn::functional::CrossEntropyFuncOptions()
                        .reduction(torch::kNone)
                        .label_smoothing(smoothing))
                    .view(weight.sizes());
    out.correct = (predictions.argmax(2).eq(targets) & p.corrupted).sum();
  } else {
    per_patch = (predictions - targets).pow(2).mean(2);
  }
  out.loss = (per_patch * weight).sum() / scored.clamp_min(1.0);
  out.scored = p.corrupted.sum();
  return out;
}

ImageClassifier build_run_model(const RunConfig& config) {
  ImageClassifier model = build_model(config.model);
  if (config.train.objective == Objective::kMaskedPatch) {
    auto* vit = dynamic_cast<ViTImpl*>(model.get());
    if (!vit)
      throw ConfigError(fmt::format("train.objective: \"masked_patch\" needs a model with patch "
                                    "tokens; \"{}\" has none", config.model.name));
    vit->add_masked_patch_head(config.train.masked_patch);
  }
  return model;
}

TrainObjective::TrainObjective(const TrainConfig& config, const std::vector<double>& mean,
                     const std::vector<double>& std, torch::Device device)
    : kind_(config.objective == Objective::kMaskedPatch ? Kind::kMaskedPatch : Kind::kSupervised),
      config_(config) {
  const auto on = torch::TensorOptions().dtype(torch::kFloat).device(device);
  mean_ = torch::tensor(std::vector<float>(mean.begin(), mean.end())).to(on);
  std_ = torch::tensor(std::vector<float>(std.begin(), std.end())).to(on);
}

bool TrainObjective::has_accuracy() const {
  return kind_ == Kind::kSupervised || config_.masked_patch.target == MaskedPatchTarget::kMeanColor;
}

const char* TrainObjective::name() const {
  return kind_ == Kind::kSupervised ? "supervised" : "masked_patch";
}

ObjectiveOutput TrainObjective::operator()(ImageClassifierImpl& model, const torch::Tensor& images,
                                           const torch::Tensor& targets) const {
  if (kind_ == Kind::kSupervised) {
    ObjectiveOutput out;
    {
      compat::CudaAutocast autocast(config_.precision == Precision::kBf16);
      out.logits = model.forward(images);
    }
    out.loss = soft_cross_entropy(out.logits, targets, config_.label_smoothing);
    return out;
  }
  ViTImpl& vit = masked_patch_model(model);
  MaskedPatchPrediction p;
  {
    compat::CudaAutocast autocast(config_.precision == Precision::kBf16);
    p = vit.forward_masked_patches(images);
  }
  const auto patch_targets = masked_patch_targets(images, vit.masked_patch->geometry, mean_, std_);
  return masked_patch_loss(p, patch_targets, config_.masked_patch, config_.label_smoothing);
}

EvalResult evaluate_masked_batches(ImageClassifierImpl& model, int64_t batches,
                                   const std::function<Batch()>& next,
                                   const Normalizer& normalize, const TrainObjective& objective,
                                   uint64_t seed, torch::Device device) {
  EvalResult r;
  if (batches == 0) return r;  // and the generators stay as they are
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);  // the corruption draws (CPU and CUDA generators)
  const auto on = torch::TensorOptions().device(device);
  auto loss_sum = torch::zeros({}, on.dtype(torch::kDouble));
  auto correct = torch::zeros({}, on.dtype(torch::kLong));
  auto scored = torch::zeros({}, on.dtype(torch::kLong));
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = next();
    const ObjectiveOutput out = objective(model, normalize(b.images), torch::Tensor());
    // The batch's mean over its corrupted patches, weighted back to a sum.
    loss_sum += out.loss.to(torch::kDouble) * out.scored.to(torch::kDouble);
    scored += out.scored;
    if (out.correct.defined()) correct += out.correct;
    r.count += b.images.size(0);
  }
  model.train(was_training);
  const double n = double(scored.item<int64_t>());
  r.loss = loss_sum.item<double>() / std::max(n, 1.0);
  r.accuracy = objective.has_accuracy() ? double(correct.item<int64_t>()) / std::max(n, 1.0)
                                        : std::numeric_limits<double>::quiet_NaN();
  return r;
}

EvalResult evaluate_masked_patches(ImageClassifierImpl& model, const DeviceDataset& data,
                                   const Normalizer& normalize, const TrainObjective& objective,
                                   int64_t batch_size, uint64_t seed) {
  EpochBatches batches(data, batch_size, /*shuffle=*/false, /*drop_last=*/false);
  int64_t index = 0;
  return evaluate_masked_batches(
      model, batches.size(), [&] { return batches.batch(index++); }, normalize,
      objective, seed, data.device());
}

EvalResult evaluate_masked_streamed(ImageClassifierImpl& model, const FileListing& files,
                                    const StreamOptions& options, const Normalizer& normalize,
                                    const TrainObjective& objective, int64_t batch_size,
                                    uint64_t seed, torch::Device device, BadImageLog* bad) {
  BatchStream stream(files, listing_plan(0, files.size()), batch_size, /*drop_last=*/false, 0, 0,
                     options, device, bad);
  return evaluate_masked_batches(
      model, stream.size(), [&] { return stream.next(); }, normalize, objective, seed,
      device);
}

}  // namespace vitlab
