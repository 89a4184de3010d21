#include "weights/weights_export.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "formats/safetensors.h"
#include "models/module_state.h"
#include "weights/timm_names.h"

namespace vitlab {

const EnumNames<ExportFormat>& export_format_names() {
  static const EnumNames<ExportFormat> n = {{ExportFormat::kSafetensors, "safetensors"},
                                            {ExportFormat::kLibtorch, "libtorch"}};
  return n;
}

const EnumNames<ExportNames>& export_names_names() {
  static const EnumNames<ExportNames> n = {
      {ExportNames::kAuto, "auto"}, {ExportNames::kTimm, "timm"}, {ExportNames::kVitlab, "vitlab"}};
  return n;
}

ExportResult export_weights(const ImageClassifierImpl& model, const std::string& path,
                            ExportFormat format, ExportNames names,
                            const std::string& sidecar_path, const Json& extra) {
  const ModelConfig& c = model.config();
  const TimmSupport support = timm_support(c);
  ExportResult result;
  if (format == ExportFormat::kLibtorch) {
    if (names == ExportNames::kTimm)
      throw UserError("--names timm: the libtorch format is LibTorch's module archive, which keeps "
                      "vitlab's module names; use --format safetensors for timm names");
    result.names = "vitlab";
  } else if (names == ExportNames::kTimm && !support.ok) {
    throw UserError(fmt::format("--names timm: timm has no equivalent of this model ({}); export "
                                "with --names vitlab (or auto)",
                                support.reason));
  } else {
    const bool timm = names == ExportNames::kTimm || (names == ExportNames::kAuto && support.ok);
    result.names = timm ? "timm" : "vitlab";
  }

  if (format == ExportFormat::kSafetensors) {
    NamedTensors state = module_state(model);
    if (result.names == "timm") state = vitlab_to_timm(c, state);
    for (auto& [name, t] : state) t = t.detach().to(torch::kCPU).contiguous();
    result.tensors = static_cast<int64_t>(state.size());
    const std::map<std::string, std::string> metadata = {
        {"format", "pt"}, {"vitlab_names", result.names}, {"vitlab_model", c.to_json().dump()}};
    write_safetensors(path, state, metadata);
  } else {
    // Exactly what torch::save(module, path) writes; written atomically like every vitlab file.
    torch::serialize::OutputArchive archive;
    model.save(archive);
    result.tensors = static_cast<int64_t>(module_state(model).size());
    write_archive_atomic(path, archive);
  }

  Json sidecar = {{"vitlab_version", version()},
                  {"file", std::filesystem::path(path).filename().string()},
                  {"format", enum_name(format, export_format_names())},
                  {"names", result.names},
                  {"tensors", result.tensors},
                  {"vitlab_model", c.to_json()},
                  {"timm_compatible", support.ok},
                  // How to rebuild the network in timm; only where the file has timm's names.
                  {"timm", result.names == "timm" ? timm_model_args(c) : Json(nullptr)}};
  if (!support.ok) sidecar["not_timm_reason"] = support.reason;
  for (auto it = extra.begin(); it != extra.end(); ++it) sidecar[it.key()] = it.value();
  result.sidecar = sidecar;
  if (!sidecar_path.empty()) write_json_file_atomic(sidecar_path, sidecar);
  return result;
}

}  // namespace vitlab
