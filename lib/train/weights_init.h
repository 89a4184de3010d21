// Models from stored weights: a run's checkpoint rebuilt as its model (`vitlab eval`, `vitlab
// export`), a run started from existing weights (`init_from`) and `vitlab import`: a vitlab
// checkpoint, timm-named (or vitlab-exported) safetensors, or a JAX .npz checkpoint (vit_jax /
// big_vision names).
#pragma once
#include <string>

#include "config/model_config.h"
#include "config/run_config.h"
#include "models/classifier.h"
#include "train/checkpoint.h"
#include "weights/weights_import.h"

namespace vitlab {

// Reads `path` in whichever of the three formats it has (weights/weights_import.h:
// detect_weights_format) and copies its weights into `model` (built from its config) through
// fit_weights. The model is left unchanged when an IoError is thrown.
WeightsImportReport load_weights(ImageClassifierImpl& model, const std::string& path,
                                 const WeightsImportOptions& options = {});

// A run's init_from settings as import options: init_head "zero" (the paper's transfer: the head
// starts at zero, the pretraining head and pre-logits layer are dropped) and init_pos_embed.
WeightsImportOptions transfer_options(const RunConfig& config);

// Loads the weights stored at `path` into `model` through the same path as `vitlab import`
// (load_weights): names mapped, position embeddings (tables and relative biases) resized when the
// grid differs, the head zeroed or re-initialised as `options` say. IoError naming the file and
// every tensor that does not fit, with its shape and the model's.
WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path,
                                      const WeightsImportOptions& options);

// `vitlab import`: a fresh model of `config` (seeded, for any re-initialised head) with the
// weights of `path`, as a checkpoint whose config is a RunConfig holding `config` (default data
// and training sections), with empty optimiser state and epochs_done 0.
Checkpoint import_checkpoint(const ModelConfig& config, const std::string& path,
                             const WeightsImportOptions& options, int64_t seed,
                             WeightsImportReport* report = nullptr);

struct CheckpointModel {
  Checkpoint checkpoint;
  RunConfig config;  // the run config stored in the checkpoint
  ImageClassifier model{nullptr};  // built from config.model, holding the checkpoint's weights (CPU)
};

// Reads a vitlab checkpoint and rebuilds its model. IoError/ConfigError naming `path` for a bad
// file, a bad stored config or weights that do not fit the stored model.
CheckpointModel load_model_from_checkpoint(const std::string& path);

}  // namespace vitlab
