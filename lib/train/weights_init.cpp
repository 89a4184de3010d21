#include "train/weights_init.h"

#include "models/factory.h"
#include "train/objective.h"

namespace vitlab {

WeightsImportReport load_weights(ImageClassifierImpl& model, const std::string& path,
                                 const WeightsImportOptions& options) {
  const WeightsFormat format = detect_weights_format(path);
  if (format != WeightsFormat::kVitlabCheckpoint)
    return fit_weights(model, read_weights_file(path, format, model.config()), options);
  WeightsFile file;
  file.path = path;
  file.format = format;
  file.tensors = sourced(load_checkpoint(path).model);
  file.names = "vitlab";
  return fit_weights(model, file, options);
}

WeightsImportOptions transfer_options(const RunConfig& config) {
  WeightsImportOptions options;
  options.zero_head = config.init_head == InitHead::kZero;
  switch (config.init_pos_embed) {
    case InitPosEmbed::kAuto: break;
    case InitPosEmbed::kBilinear: options.pos_interp = PosInterp::kBilinear; break;
    case InitPosEmbed::kBicubic: options.pos_interp = PosInterp::kBicubic; break;
    case InitPosEmbed::kFresh: options.fresh_pos_embed = true; break;
  }
  return options;
}

WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path,
                                      const WeightsImportOptions& options) {
  return load_weights(model, path, options);
}

Checkpoint import_checkpoint(const ModelConfig& config, const std::string& path,
                             const WeightsImportOptions& options, int64_t seed,
                             WeightsImportReport* report) {
  torch::manual_seed(seed);
  ImageClassifier model = build_model(config);
  WeightsImportReport r = load_weights(*model, path, options);
  RunConfig run;
  run.description = r.summary();
  run.seed = seed;
  run.model = config;
  Checkpoint checkpoint;
  checkpoint.config = run.to_json();
  checkpoint.model = module_state(*model);
  if (report) *report = r;
  return checkpoint;
}

CheckpointModel load_model_from_checkpoint(const std::string& path) {
  CheckpointModel out;
  out.checkpoint = load_checkpoint(path);
  out.config = read_run_config(out.checkpoint.config, path + " (stored config)");
  out.model = build_run_model(out.config);  // with a masked-patch run's pretraining head
  load_module_state(*out.model, out.checkpoint.model, path);
  return out;
}

}  // namespace vitlab
