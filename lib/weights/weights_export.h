// Writing a model's weights for use outside vitlab.
//  - safetensors: timm's parameter names and layouts wherever timm has the variant
//    (weights/timm_names.h), vitlab's module names otherwise; header metadata records which
//    ("vitlab_names") and the resolved model config ("vitlab_model").
//  - libtorch: the archive torch::save(module) writes (nested per submodule, vitlab's names),
//    so C++ code can torch::load() it into a vitlab model or walk it with InputArchive.
// Both write a sidecar JSON: the resolved vitlab model config, which names were used, and the
// timm constructor arguments that rebuild the same network (timm_model_args).
#pragma once
#include <string>

#include "config/json_reader.h"
#include "models/classifier.h"

namespace vitlab {

enum class ExportFormat { kSafetensors, kLibtorch };
enum class ExportNames { kAuto, kTimm, kVitlab };
const EnumNames<ExportFormat>& export_format_names();
const EnumNames<ExportNames>& export_names_names();

struct ExportResult {
  std::string names;  // "timm" or "vitlab"
  int64_t tensors = 0;
  Json sidecar;
};

// Writes `path` (atomically) and, unless `sidecar_path` is empty, the sidecar JSON. `extra` is
// merged into the sidecar (e.g. the source checkpoint). UserError when timm names are asked for
// a variant timm lacks, or for the libtorch format.
ExportResult export_weights(const ImageClassifierImpl& model, const std::string& path,
                            ExportFormat format, ExportNames names,
                            const std::string& sidecar_path, const Json& extra = Json::object());

}  // namespace vitlab
