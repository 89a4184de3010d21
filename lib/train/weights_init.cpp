#include "train/weights_init.h"

#include "models/factory.h"

namespace vitlab {

WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path) {
  return load_weights(model, path, WeightsImportOptions{});
}

CheckpointModel load_model_from_checkpoint(const std::string& path) {
  CheckpointModel out;
  out.checkpoint = load_checkpoint(path);
  out.config = read_run_config(out.checkpoint.config, path + " (stored config)");
  out.model = build_model(out.config.model);
  load_module_state(*out.model, out.checkpoint.model, path);
  return out;
}

}  // namespace vitlab
