// Fitting weights made elsewhere into a factory model: timm safetensors (also vitlab's own
// `export`) and the JAX .npz checkpoints (vit_jax / big_vision names) are read here; vitlab
// checkpoints are read by the training layer (train/weights_init.h: load_weights), which hands
// their tensors to fit_weights like any other file's.
//
// What is adapted, and nothing else:
//  - names and layouts (weights/timm_names.h, weights/weights_jax.h);
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
#include "models/classifier.h"
#include "weights/weights_pos_embed.h"
#include "weights/weights_tensors.h"

namespace vitlab {

enum class WeightsFormat { kVitlabCheckpoint, kSafetensors, kNpz };
const EnumNames<WeightsFormat>& weights_format_names();

// By extension (.safetensors, .npz), else by content; anything else is read as a vitlab
// checkpoint (which then fails with a clear message if it is not one). IoError if missing.
WeightsFormat detect_weights_format(const std::string& path);

struct WeightsImportOptions {
  std::optional<PosInterp> pos_interp;  // default: bilinear for .npz, bicubic otherwise
  // Transfer (the paper's fine-tuning, Sec. 3.2): the head starts at zero and a pre-logits layer
  // the model does not have is dropped, instead of loading the file's head.
  bool zero_head = false;
  // The model keeps its own initial position embedding (learned tables, relative biases) instead
  // of the file's, resized or not: fine-tuning "without interpolation".
  bool fresh_pos_embed = false;
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
  int64_t tensors = 0;  // the model's tensors filled from the file (resized ones included)
  // By vitlab name: the tensors resized to the model's grid, the model's own ones kept instead of
  // the file's (a zero head, a fresh position embedding), and the file's that the model has no
  // place for and a transfer drops (the masked-patch head, a pre-logits layer).
  std::vector<std::string> resized, fresh, dropped;
  std::vector<std::string> notes;

  Json to_json() const;
  std::string summary() const;  // one line, for the imported checkpoint's description
};

// A weights file's tensors in vitlab's names, each with the name it has in the file.
struct WeightsFile {
  std::string path;
  WeightsFormat format = WeightsFormat::kVitlabCheckpoint;
  SourcedTensors tensors;
  std::string names;  // the file's naming convention: "vitlab", "timm", "vit_jax" or "big_vision"
  std::vector<std::string> notes;
};

// Reads a safetensors or .npz file and maps its names to vitlab's for `config`. IoError naming
// the file and tensor for a malformed file; a vitlab checkpoint is not read here.
WeightsFile read_weights_file(const std::string& path, WeightsFormat format, const ModelConfig& config);

// Copies `file`'s tensors into `model` (built from its config), adapting what the header above
// lists. The model is left unchanged when an IoError is thrown.
WeightsImportReport fit_weights(ImageClassifierImpl& model, const WeightsFile& file,
                                const WeightsImportOptions& options = {});

}  // namespace vitlab
