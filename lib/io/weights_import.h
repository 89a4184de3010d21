// Loading weights made elsewhere into a factory model: vitlab checkpoints, timm safetensors
// (also vitlab's own `export`) and the JAX .npz checkpoints (vit_jax / big_vision names).
//
// What is adapted, and nothing else:
//  - names and layouts (io/timm_names.h, io/weights_jax.h);
//  - the position embedding, when the token grid differs (bilinear as vit_jax / big_vision,
//    bicubic as timm; default bilinear for .npz, bicubic otherwise) or the class-token row is
//    missing (zero row: exact for timm no_embed_class and big_vision layouts);
//  - the classifier head, re-initialised when only the class count differs;
//  - dtypes (any floating type is converted to the model's).
// Every other difference — a missing, unexpected or misshaped tensor, an unknown name — is an
// IoError that names the file and the tensor as the file calls it.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "config/model_config.h"
#include "io/weights_pos_embed.h"
#include "models/classifier.h"
#include "train/checkpoint.h"

namespace vitlab {

enum class WeightsFormat { kVitlabCheckpoint, kSafetensors, kNpz };
const EnumNames<WeightsFormat>& weights_format_names();

// By extension (.safetensors, .npz), else by content; anything else is read as a vitlab
// checkpoint (which then fails with a clear message if it is not one). IoError if missing.
WeightsFormat detect_weights_format(const std::string& path);

struct WeightsImportOptions {
  std::optional<PosInterp> pos_interp;  // default: bilinear for .npz, bicubic otherwise
};

struct WeightsImportReport {
  std::string source;
  WeightsFormat format = WeightsFormat::kVitlabCheckpoint;
  std::string names;  // "vitlab", "timm", "vit_jax" or "big_vision"
  PosInterp pos_interp = PosInterp::kBicubic;
  PosEmbedChange pos_embed;  // learned_1d
  bool pos_2d_resized = false;  // learned_2d row/column tables
  bool head_reinitialized = false;
  int64_t classes_in_file = 0, classes_in_model = 0;
  int64_t tensors = 0;
  std::vector<std::string> notes;

  Json to_json() const;
  std::string summary() const;  // one line, for the imported checkpoint's description
};

// Reads `path` and copies its weights into `model` (built from its config). The model is left
// unchanged when an IoError is thrown.
WeightsImportReport load_weights(ImageClassifierImpl& model, const std::string& path,
                                 const WeightsImportOptions& options = {});

// `vitlab import`: a fresh model of `config` (seeded, for any re-initialised head) with the
// weights of `path`, as a checkpoint whose config is a RunConfig holding `config` (default data
// and training sections), with empty optimiser state and epochs_done 0.
Checkpoint import_checkpoint(const ModelConfig& config, const std::string& path,
                             const WeightsImportOptions& options, int64_t seed,
                             WeightsImportReport* report = nullptr);

}  // namespace vitlab
