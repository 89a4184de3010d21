// Models from stored weights: a run's checkpoint rebuilt as its model (`vitlab eval`, `vitlab
// export`), and a run started from existing weights (`init_from`): a vitlab checkpoint, timm-named
// (or vitlab-exported) safetensors, or a JAX .npz checkpoint (vit_jax / big_vision names).
#pragma once
#include <string>

#include "config/run_config.h"
#include "io/weights_import.h"
#include "models/classifier.h"
#include "train/checkpoint.h"

namespace vitlab {

// Loads the weights stored at `path` into `model` through the same path as `vitlab import`
// (io/weights_import.h): names mapped, position embedding resized when the grid differs
// (bicubic, or bilinear for .npz), the head re-initialised when only the class count differs.
// IoError naming the file and tensor for anything else that does not fit.
WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path);

struct CheckpointModel {
  Checkpoint checkpoint;
  RunConfig config;  // the run config stored in the checkpoint
  ImageClassifier model{nullptr};  // built from config.model, holding the checkpoint's weights (CPU)
};

// Reads a vitlab checkpoint and rebuilds its model. IoError/ConfigError naming `path` for a bad
// file, a bad stored config or weights that do not fit the stored model.
CheckpointModel load_model_from_checkpoint(const std::string& path);

}  // namespace vitlab
