// Optimisation settings.
#pragma once
#include <string>

#include "config/json_reader.h"

namespace vitlab {

enum class OptimizerKind { kAdamW, kSgd };
enum class LrSchedule { kCosine, kLinear, kConstant };
enum class Precision { kFp32, kBf16 };
const EnumNames<OptimizerKind>& optimizer_kind_names();
const EnumNames<LrSchedule>& lr_schedule_names();
const EnumNames<Precision>& precision_names();

struct TrainConfig {
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
