#include "config/train_config.h"

namespace vitlab {

const EnumNames<OptimizerKind>& optimizer_kind_names() {
  static const EnumNames<OptimizerKind> n = {{OptimizerKind::kAdamW, "adamw"},
                                             {OptimizerKind::kSgd, "sgd"}};
  return n;
}
const EnumNames<LrSchedule>& lr_schedule_names() {
  static const EnumNames<LrSchedule> n = {
      {LrSchedule::kCosine, "cosine"}, {LrSchedule::kLinear, "linear"}, {LrSchedule::kConstant, "constant"}};
  return n;
}
const EnumNames<Precision>& precision_names() {
  static const EnumNames<Precision> n = {{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}};
  return n;
}

const EnumNames<Objective>& objective_names() {
  static const EnumNames<Objective> n = {{Objective::kSupervised, "supervised"},
                                         {Objective::kMaskedPatch, "masked_patch"}};
  return n;
}
const EnumNames<MaskedPatchTarget>& masked_patch_target_names() {
  static const EnumNames<MaskedPatchTarget> n = {{MaskedPatchTarget::kMeanColor, "mean_color"},
                                                 {MaskedPatchTarget::kDownsized4x4, "downsized_4x4"},
                                                 {MaskedPatchTarget::kFullPatch, "full_patch"}};
  return n;
}

void MaskedPatchConfig::read(JsonReader& r) {
  r.read_enum("target", target, masked_patch_target_names());
  r.read("corruption_rate", corruption_rate, 0.0, 1.0);
  if (corruption_rate <= 0.0 || corruption_rate >= 1.0)
    r.error("corruption_rate", fmt::format("{} is outside (0, 1): some patches, not all and not "
                                           "none, must be corrupted", corruption_rate));
  r.read("mask_share", mask_share, 0.0, 1.0);
  r.read("random_share", random_share, 0.0, 1.0);
  if (mask_share + random_share > 1.0 + 1e-12)
    r.error("random_share", fmt::format("mask_share {} + random_share {} is above 1", mask_share,
                                        random_share));
}

Json MaskedPatchConfig::to_json() const {
  return Json{{"target", enum_name(target, masked_patch_target_names())},
              {"corruption_rate", corruption_rate},
              {"mask_share", mask_share},
              {"random_share", random_share}};
}

void FewShotConfig::read(JsonReader& r) {
  r.read("shots", shots, 1, 100000);
  r.read("seeds", seeds, 1, 1000);
}

Json FewShotConfig::to_json() const { return Json{{"shots", shots}, {"seeds", seeds}}; }

void TrainConfig::read(JsonReader& r) {
  r.read_enum("objective", objective, objective_names());
  {
    JsonReader m = r.child("masked_patch");
    masked_patch.read(m);
    m.finish();
  }
  {
    JsonReader f = r.child("fewshot");
    fewshot.read(f);
    f.finish();
  }
  r.read("epochs", epochs, 1, 1000000);
  r.read("batch_size", batch_size, 1, 1 << 20);
  r.read("eval_batch_size", eval_batch_size, 1, 1 << 20);
  r.read_enum("optimizer", optimizer, optimizer_kind_names());
  r.read("lr", lr, 0.0, 100.0);
  r.read("min_lr", min_lr, 0.0, 100.0);
  r.read("weight_decay", weight_decay, 0.0, 100.0);
  r.read("beta1", beta1, 0.0, 0.999999);
  r.read("beta2", beta2, 0.0, 0.999999999);
  r.read("eps", eps, 1e-20, 1.0);
  r.read("momentum", momentum, 0.0, 0.999999);
  r.read("nesterov", nesterov);
  r.read_enum("schedule", schedule, lr_schedule_names());
  r.read("warmup_epochs", warmup_epochs, 0.0, 1e6);
  r.read("grad_clip", grad_clip, 0.0, 1e9);
  r.read("label_smoothing", label_smoothing, 0.0, 0.99);
  r.read_enum("precision", precision, precision_names());
  r.read("threads", threads, 0, 4096);
  r.read("fast_path", fast_path);
  r.read("log_every", log_every, 0);
  r.read("checkpoint_every", checkpoint_every, 1, 1000000);
}

Json TrainConfig::to_json() const {
  return Json{{"objective", enum_name(objective, objective_names())},
              {"masked_patch", masked_patch.to_json()},
              {"fewshot", fewshot.to_json()},
              {"epochs", epochs},
              {"batch_size", batch_size},
              {"eval_batch_size", eval_batch_size},
              {"optimizer", enum_name(optimizer, optimizer_kind_names())},
              {"lr", lr},
              {"min_lr", min_lr},
              {"weight_decay", weight_decay},
              {"beta1", beta1},
              {"beta2", beta2},
              {"eps", eps},
              {"momentum", momentum},
              {"nesterov", nesterov},
              {"schedule", enum_name(schedule, lr_schedule_names())},
              {"warmup_epochs", warmup_epochs},
              {"grad_clip", grad_clip},
              {"label_smoothing", label_smoothing},
              {"precision", enum_name(precision, precision_names())},
              {"threads", threads},
              {"fast_path", fast_path},
              {"log_every", log_every},
              {"checkpoint_every", checkpoint_every}};
}

void TrainConfig::validate(const std::string& source, const std::string& path) const {
  auto bad = [&](const std::string& key, const std::string& message) {
    config_error(source, join_path(path, key), message);
  };
  if (warmup_epochs > epochs)
    bad("warmup_epochs", fmt::format("{} is longer than the run ({} epochs)", warmup_epochs, epochs));
  if (min_lr > lr) bad("min_lr", fmt::format("{} is above the peak lr {}", min_lr, lr));
  if (nesterov && optimizer != OptimizerKind::kSgd)
    bad("nesterov", "only applies to optimizer \"sgd\"");
  for (size_t i = 0; i < fewshot.shots.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (fewshot.shots[i] == fewshot.shots[j])
        bad(fmt::format("fewshot.shots[{}]", i), fmt::format("{} is listed twice", fewshot.shots[i]));
}

}  // namespace vitlab
