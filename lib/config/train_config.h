// Optimisation settings.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

enum class OptimizerKind { kAdamW, kSgd };
enum class LrSchedule { kCosine, kLinear, kConstant };
enum class Precision { kFp32, kBf16 };
const EnumNames<OptimizerKind>& optimizer_kind_names();
const EnumNames<LrSchedule>& lr_schedule_names();
const EnumNames<Precision>& precision_names();

// What the run trains for: the class labels, or masked patch prediction (the paper's Sec. 4.6
// and Appendix B.1.2), which needs no labels.
enum class Objective { kSupervised, kMaskedPatch };
const EnumNames<Objective>& objective_names();

// The masked-patch targets the paper tried (B.1.2): the 3-bit mean colour of the patch as
// 2^(3C) classes (its choice), or L2 regression on the patch downsized to 4x4 or on all its pixels.
enum class MaskedPatchTarget { kMeanColor, kDownsized4x4, kFullPatch };
const EnumNames<MaskedPatchTarget>& masked_patch_target_names();

struct MaskedPatchConfig {
  MaskedPatchTarget target = MaskedPatchTarget::kMeanColor;
  double corruption_rate = 0.5;  // share of patch embeddings corrupted, in (0, 1); the paper's 50%
  // Of the corrupted ones: replaced by the learned [mask] embedding, by another random patch's
  // embedding from the batch, and (the rest) left unchanged: BERT's 80/10/10, as the paper.
  double mask_share = 0.8;
  double random_share = 0.1;

  void read(JsonReader& reader);
  Json to_json() const;
  // Classes per patch for kMeanColor: 2^(3 C), 8 for grey images and 512 for RGB.
  static int64_t color_classes(int64_t channels) { return int64_t{1} << (3 * channels); }
};

// Few-shot linear evaluation (the paper's Sec. 4.1) after training: K images per class for each K
// in `shots`, `seeds` draws each; empty = off.
struct FewShotConfig {
  std::vector<int64_t> shots;
  int seeds = 5;

  void read(JsonReader& reader);
  Json to_json() const;
};

struct TrainConfig {
  Objective objective = Objective::kSupervised;
  MaskedPatchConfig masked_patch;  // objective "masked_patch"
  FewShotConfig fewshot;
  int epochs = 10;
  int batch_size = 128;
  int eval_batch_size = 512;
  OptimizerKind optimizer = OptimizerKind::kAdamW;
  double lr = 1e-3;  // peak learning rate
  double min_lr = 0.0;  // end of the decay
  double weight_decay = 0.05;  // decoupled (AdamW) or L2 (SGD); skips norms, biases, pos/cls
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum = 0.9;  // SGD
  bool nesterov = false;  // SGD
  LrSchedule schedule = LrSchedule::kCosine;
  double warmup_epochs = 0.0;  // linear warmup from 0, in epochs (fractions allowed)
  double grad_clip = 0.0;  // global gradient-norm clip; 0 = off
  double label_smoothing = 0.0;
  Precision precision = Precision::kFp32;  // bf16 = CUDA autocast with fp32 master weights
  int threads = 0;  // CPU threads; 0 = OMP_NUM_THREADS when set, else all cores
  bool fast_path = true;  // CUDA: fused optimiser and CUDA-graph capture of the train step
  int log_every = 0;  // steps between progress lines inside an epoch; 0 = once per epoch
  // Epochs between checkpoint writes (last.pt, and best.pt if validation improved since); the
  // final epoch is always written. Long runs of big models write gigabytes at 1.
  int checkpoint_every = 1;

  void read(JsonReader& reader);
  Json to_json() const;
  void validate(const std::string& source = "", const std::string& path = "train") const;
};

}  // namespace vitlab
