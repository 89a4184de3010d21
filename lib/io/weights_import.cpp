#include "io/weights_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "config/run_config.h"
#include "core/error.h"
#include "io/npz.h"
#include "io/safetensors.h"
#include "io/timm_names.h"
#include "io/weights_jax.h"
#include "models/factory.h"
#include "models/pos_embed.h"

namespace vitlab {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

struct FileTensors {
  SourcedTensors tensors;  // vitlab names
  std::string names;
  std::vector<std::string> notes;
};

// safetensors written by `vitlab export` say which names they use; others are guessed from
// the two names that differ between the conventions.
std::string safetensors_names(const SafetensorsFile& file) {
  if (auto it = file.metadata.find("vitlab_names"); it != file.metadata.end())
    if (it->second == "timm" || it->second == "vitlab") return it->second;
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("pos.", 0) == 0 || name.rfind("backbone.", 0) == 0) return "vitlab";
  return "timm";
}

FileTensors read_weights_file(const std::string& path, WeightsFormat format, const ModelConfig& config) {
  FileTensors out;
  switch (format) {
    case WeightsFormat::kVitlabCheckpoint:
      out.tensors = sourced(load_checkpoint(path).model);
      out.names = "vitlab";
      break;
    case WeightsFormat::kSafetensors: {
      SafetensorsFile file = read_safetensors(path);
      out.names = safetensors_names(file);
      out.tensors = sourced(file.tensors);
      if (out.names == "timm") out.tensors = timm_to_vitlab(config, std::move(out.tensors));
      break;
    }
    case WeightsFormat::kNpz: {
      JaxConversion jax = jax_to_timm(read_npz(path).tensors, path);
      out.names = jax.dialect;
      out.tensors = timm_to_vitlab(config, std::move(jax.tensors));
      if (jax.skipped > 0)
        out.notes.push_back(fmt::format("skipped {} entries outside \"{}\" (optimiser state or "
                                        "other towers)",
                                        jax.skipped, jax.prefix));
      break;
    }
  }
  return out;
}

// The name a model tensor has in the file's convention, for "missing" messages.
std::string file_name_of(const ModelConfig& config, const std::string& names,
                         const std::string& vitlab_name, const torch::Tensor& t) {
  if (names == "vitlab") return vitlab_name;
  NamedTensors one = vitlab_to_timm(config, {{vitlab_name, t}});
  const std::string timm = one.empty() ? vitlab_name : one[0].first;
  return timm == vitlab_name ? timm : fmt::format("{} (vitlab: {})", timm, vitlab_name);
}

std::string list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < 6; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > 6) s += fmt::format(", ... ({} in all)", items.size());
  return s;
}

// sincos_2d: the file's table must be the fixed function (it is not loaded, only checked).
void check_sincos(const SourcedTensor& t, const ModelConfig& c, const std::string& path) {
  const auto layout = pos_embed_layout(t.tensor, fmt::format("{}: tensor \"{}\"", path, t.origin));
  auto table = sincos_2d_table(layout.grid, c.width).unsqueeze(0);
  auto expected = torch::cat({torch::zeros({1, layout.prefix, c.width}), table}, 1);
  if (!t.tensor.sizes().equals(expected.sizes()) ||
      !torch::allclose(t.tensor.to(torch::kFloat), expected, 1e-5, 1e-5))
    fail<IoError>("{}: tensor \"{}\" is not the fixed 2-D sin-cos table of a {}x{} grid, so the "
                  "file's position embedding was learned; import it with pos_embed=learned_1d",
                  path, t.origin, layout.grid, layout.grid);
}

}  // namespace

const EnumNames<WeightsFormat>& weights_format_names() {
  static const EnumNames<WeightsFormat> n = {{WeightsFormat::kVitlabCheckpoint, "vitlab-checkpoint"},
                                             {WeightsFormat::kSafetensors, "safetensors"},
                                             {WeightsFormat::kNpz, "npz"}};
  return n;
}

WeightsFormat detect_weights_format(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail<IoError>("{}: no such weights file", path);
  const std::string ext = lower_extension(path);
  if (ext == ".safetensors") return WeightsFormat::kSafetensors;
  if (ext == ".npz") return WeightsFormat::kNpz;
  // safetensors: 8-byte header length, then the JSON header's '{'.
  char head[9] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(head, sizeof(head));
  if (in.gcount() == 9 && head[8] == '{') return WeightsFormat::kSafetensors;
  return WeightsFormat::kVitlabCheckpoint;  // LibTorch archives and npz are both zips
}

Json WeightsImportReport::to_json() const {
  Json j = {{"source", source},
            {"format", enum_name(format, weights_format_names())},
            {"names", names},
            {"tensors", tensors},
            {"pos_interp", enum_name(pos_interp, pos_interp_names())},
            {"pos_embed_resized", pos_embed.resized || pos_2d_resized},
            {"head_reinitialized", head_reinitialized},
            {"notes", notes}};
  if (pos_embed.resized) j["pos_embed_grid"] = {pos_embed.grid_from, pos_embed.grid_to};
  if (pos_embed.class_row_added) j["pos_embed_class_row_added"] = true;
  if (head_reinitialized) j["head_classes"] = {classes_in_file, classes_in_model};
  return j;
}

std::string WeightsImportReport::summary() const {
  std::string s = fmt::format("imported from {} ({} names, {})", source, names,
                              enum_name(format, weights_format_names()));
  if (pos_embed.resized)
    s += fmt::format("; position embedding resized {0}x{0} -> {1}x{1} ({2})", pos_embed.grid_from,
                     pos_embed.grid_to, enum_name(pos_interp, pos_interp_names()));
  if (pos_2d_resized)
    s += fmt::format("; learned_2d tables resized ({})", enum_name(pos_interp, pos_interp_names()));
  if (pos_embed.class_row_added) s += "; zero class-token row added to the position embedding";
  if (head_reinitialized)
    s += fmt::format("; head re-initialised ({} -> {} classes)", classes_in_file, classes_in_model);
  for (const auto& n : notes) s += "; " + n;
  return s;
}

WeightsImportReport load_weights(ImageClassifierImpl& model, const std::string& path,
                                 const WeightsImportOptions& options) {
  const ModelConfig& c = model.config();
  WeightsImportReport report;
  report.source = path;
  report.format = detect_weights_format(path);
  report.pos_interp = options.pos_interp.value_or(
      report.format == WeightsFormat::kNpz ? PosInterp::kBilinear : PosInterp::kBicubic);
  FileTensors file = read_weights_file(path, report.format, c);
  report.names = file.names;
  report.notes = file.notes;

  std::map<std::string, torch::Tensor> own;
  for (auto& [name, t] : module_state(model)) own[name] = t;
  std::set<std::string> buffers;
  for (const auto& b : model.named_buffers(true)) buffers.insert(b.key());

  std::map<std::string, SourcedTensor> given;
  for (auto& t : file.tensors) {
    if (given.count(t.name))
      fail<IoError>("{}: tensors \"{}\" and \"{}\" both map to {}", path, given[t.name].origin,
                    t.origin, t.name);
    given[t.name] = t;
  }
  // Buffers (the sin-cos table, relative-position indices) follow from the config.
  for (const auto& b : buffers) {
    auto it = given.find(b);
    if (it == given.end()) continue;
    if (b == "pos.fixed") check_sincos(it->second, c, path);
    given.erase(it);
  }
  const std::string where_pos = path + ": tensor \"";
  // Another grid or class-row layout (same width: a wrong width is reported with the rest).
  if (auto it = given.find("pos.pos_embed");
      it != given.end() && own.count("pos.pos_embed") && it->second.tensor.dim() == 3 &&
      it->second.tensor.size(2) == c.width &&
      !it->second.tensor.sizes().equals(own["pos.pos_embed"].sizes())) {
    const int64_t prefix = c.class_token ? 1 : 0;
    it->second.tensor = adapt_pos_embed(it->second.tensor, prefix, c.grid_size(), c.width,
                                        report.pos_interp, where_pos + it->second.origin + "\"",
                                        &report.pos_embed);
  }
  for (const char* half : {"pos.row_embed", "pos.col_embed"}) {
    auto it = given.find(half);
    if (it == given.end() || !own.count(half)) continue;
    auto& t = it->second.tensor;
    if (t.dim() == 2 && t.size(1) == own[half].size(1) && t.size(0) != own[half].size(0)) {
      t = resize_pos_1d(t, own[half].size(0), report.pos_interp);
      report.pos_2d_resized = true;
    }
  }
  // Transfer to another class count: the model's freshly initialised head replaces the file's.
  const bool resnet = c.family == ModelFamily::kResNet;
  const std::string head_w = resnet ? "head.fc.weight" : "head.weight";
  const std::string head_b = resnet ? "head.fc.bias" : "head.bias";
  if (auto it = given.find(head_w); it != given.end() && own.count(head_w)) {
    const auto& f = it->second.tensor;
    const auto& m = own[head_w];
    if (f.dim() == 2 && f.size(1) == m.size(1) && f.size(0) != m.size(0)) {
      report.head_reinitialized = true;
      report.classes_in_file = f.size(0);
      report.classes_in_model = m.size(0);
      it->second.tensor = m.detach().clone();
      if (auto b = given.find(head_b); b != given.end()) b->second.tensor = own[head_b].detach().clone();
    }
  }

  std::vector<std::string> missing, unexpected, misshaped;
  for (const auto& [name, t] : own) {
    if (buffers.count(name)) continue;
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back("\"" + file_name_of(c, file.names, name, t) + "\"");
      continue;
    }
    const auto& f = it->second;
    if (!f.tensor.sizes().equals(t.sizes()))
      misshaped.push_back(fmt::format("\"{}\" is {}, the model's {} is {}", f.origin,
                                      shape_str(f.tensor), name, shape_str(t)));
    else if (t.is_floating_point() && !f.tensor.is_floating_point())
      misshaped.push_back(fmt::format("\"{}\" has dtype {}; a floating-point type is needed", f.origin,
                                      c10::toString(f.tensor.scalar_type())));
  }
  for (const auto& [name, f] : given)
    if (!own.count(name) || buffers.count(name)) unexpected.push_back("\"" + f.origin + "\"");
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string msg = fmt::format("{}: {} weights do not fit model \"{}\"", path, file.names, c.name);
    if (!missing.empty()) msg += "; missing tensor(s): " + list(missing);
    if (!unexpected.empty()) msg += "; unexpected tensor(s): " + list(unexpected);
    if (!misshaped.empty()) msg += "; wrong shape or type: " + list(misshaped);
    // The GAP trap: timm's VisionTransformer normalises after pooling (fc_norm, its default for
    // global_pool='avg'); vit_jax, big_vision (models/vit.py: encoder_norm, then the mean) and timm
    // with fc_norm=False normalise the tokens before it.
    const bool file_norm = given.count("norm.weight") > 0, file_fc_norm = given.count("fc_norm.weight") > 0;
    if (c.pool == Pooling::kGap && file_norm && !own.count("norm.weight"))
      msg += "; the file normalises tokens before pooling: import with gap_norm=before_pool";
    if (c.pool == Pooling::kGap && file_fc_norm && !own.count("fc_norm.weight"))
      msg += "; the file normalises after pooling (timm fc_norm): import with gap_norm=after_pool";
    const TimmSupport support = timm_support(c);
    if (file.names != "vitlab" && !support.ok)
      msg += fmt::format(" (this model variant has no timm/JAX equivalent: {})", support.reason);
    throw IoError(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : own)
    if (!buffers.count(name)) t.copy_(given.at(name).tensor);
  report.tensors = static_cast<int64_t>(given.size());
  return report;
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

}  // namespace vitlab
