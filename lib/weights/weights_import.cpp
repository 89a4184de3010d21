#include "weights/weights_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "formats/npz.h"
#include "formats/safetensors.h"
#include "models/pos_embed.h"
#include "weights/timm_names.h"
#include "weights/weights_jax.h"

namespace vitlab {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// safetensors written by `vitlab export` say which names they use; others are guessed from
// the two names that differ between the conventions.
std::string safetensors_names(const SafetensorsFile& file) {
  if (auto it = file.metadata.find("vitlab_names"); it != file.metadata.end())
    if (it->second == "timm" || it->second == "vitlab") return it->second;
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("pos.", 0) == 0 || name.rfind("backbone.", 0) == 0) return "vitlab";
  return "timm";
}

// The name a model tensor has in the file's convention, for "missing" messages.
std::string file_name_of(const ModelConfig& config, const std::string& names,
                         const std::string& vitlab_name, const torch::Tensor& t) {
  if (names == "vitlab") return vitlab_name;
  NamedTensors one = vitlab_to_timm(config, {{vitlab_name, t}});
  const std::string timm = one.empty() ? vitlab_name : one[0].first;
  return timm == vitlab_name ? timm : fmt::format("{} (vitlab: {})", timm, vitlab_name);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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

// The model's own tensors by name, and which of them are buffers.
struct ModelTensors {
  std::map<std::string, torch::Tensor> tensors;
  std::set<std::string> buffers;
};

ModelTensors model_tensors(ImageClassifierImpl& model) {
  ModelTensors own;
  for (auto& [name, t] : module_state(model)) own.tensors[name] = t;
  for (const auto& b : model.named_buffers(true)) own.buffers.insert(b.key());
  return own;
}

// The file's tensors by vitlab name; two file tensors that map to one name are an error.
std::map<std::string, SourcedTensor> by_vitlab_name(const WeightsFile& file) {
  std::map<std::string, SourcedTensor> given;
  for (const auto& t : file.tensors) {
    if (given.count(t.name))
      fail<IoError>("{}: tensors \"{}\" and \"{}\" both map to {}", file.path, given[t.name].origin,
                    t.origin, t.name);
    given[t.name] = t;
  }
  return given;
}

// Buffers (the sin-cos table, relative-position indices) follow from the config, so the file's
// copies are dropped (the sin-cos table after checking it).
void drop_config_buffers(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                         const ModelConfig& c, const std::string& path) {
  for (const auto& b : own.buffers) {
    auto it = given.find(b);
    if (it == given.end()) continue;
    if (b == "pos.fixed") check_sincos(it->second, c, path);
    given.erase(it);
  }
}

// Another grid or class-row layout (same width: a wrong width is reported with the rest).
void adapt_pos_embeddings(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                          const ModelConfig& c, const std::string& path, WeightsImportReport& report) {
  const auto& mine = own.tensors;
  if (auto it = given.find("pos.pos_embed");
      it != given.end() && mine.count("pos.pos_embed") && it->second.tensor.dim() == 3 &&
      it->second.tensor.size(2) == c.width &&
      !it->second.tensor.sizes().equals(mine.at("pos.pos_embed").sizes())) {
    const int64_t prefix = c.class_token ? 1 : 0;
    it->second.tensor = adapt_pos_embed(it->second.tensor, prefix, c.grid_size(), c.width,
                                        report.pos_interp,
                                        path + ": tensor \"" + it->second.origin + "\"",
                                        &report.pos_embed);
    if (report.pos_embed.resized) report.resized.push_back("pos.pos_embed");
  }
  for (const char* half : {"pos.row_embed", "pos.col_embed"}) {
    auto it = given.find(half);
    if (it == given.end() || !mine.count(half)) continue;
    auto& t = it->second.tensor;
    const auto& m = mine.at(half);
    if (t.dim() == 2 && t.size(1) == m.size(1) && t.size(0) != m.size(0)) {
      t = resize_pos_1d(t, m.size(0), report.pos_interp);
      report.pos_2d_resized = true;
      report.resized.push_back(half);
    }
  }
}

// Relative position biases trained on another grid (resize_relative_bias says how).
void adapt_relative_biases(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                           const ModelConfig& c, const std::string& path, WeightsImportReport& report) {
  for (auto& [name, t] : given) {
    auto mine = own.tensors.find(name);
    if (mine == own.tensors.end() || !ends_with(name, ".relative.relative_bias")) continue;
    if (t.tensor.dim() != 2 || t.tensor.size(0) != mine->second.size(0) ||
        t.tensor.sizes().equals(mine->second.sizes()))
      continue;
    t.tensor = resize_relative_bias(t.tensor, c.num_prefix_tokens(), c.grid_size(),
                                    path + ": tensor \"" + t.origin + "\"");
    report.resized.push_back(name);
  }
}

bool is_position_embedding(const std::string& name) {
  return name == "pos.pos_embed" || name == "pos.row_embed" || name == "pos.col_embed" ||
         ends_with(name, ".relative.relative_bias");
}

// The pretraining parts a fine-tuned model has no place for: the masked-patch head always, a
// pre-logits layer when the head starts fresh (the paper removes the whole head for transfer).
void drop_pretraining_parts(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                            const WeightsImportOptions& options, WeightsImportReport& report) {
  for (auto it = given.begin(); it != given.end();) {
    const bool head_part = it->first.rfind("masked_patch.", 0) == 0 ||
                           (options.zero_head && it->first.rfind("pre_logits.", 0) == 0);
    if (head_part && !own.tensors.count(it->first)) {
      report.dropped.push_back(it->first);
      it = given.erase(it);
    } else {
      ++it;
    }
  }
}

// The model's own tensor instead of the file's, for each of `names` the model has.
void keep_model_tensors(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                        const std::vector<std::string>& names, std::vector<std::string>& kept) {
  for (const auto& name : names) {
    auto mine = own.tensors.find(name);
    if (mine == own.tensors.end()) continue;
    SourcedTensor& t = given[name];
    if (t.origin.empty()) t.origin = name;
    t.name = name;
    t.tensor = mine->second.detach().clone();
    kept.push_back(name);
  }
}

// Transfer to another class count: the model's freshly initialised head replaces the file's.
void reinit_head_for_classes(std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                             const ModelConfig& c, WeightsImportReport& report) {
  const bool resnet = c.family == ModelFamily::kResNet;
  const std::string head_w = resnet ? "head.fc.weight" : "head.weight";
  const std::string head_b = resnet ? "head.fc.bias" : "head.bias";
  auto it = given.find(head_w);
  if (it == given.end() || !own.tensors.count(head_w)) return;
  const auto& f = it->second.tensor;
  const auto& m = own.tensors.at(head_w);
  if (f.dim() == 2 && f.size(1) == m.size(1) && f.size(0) != m.size(0)) {
    report.head_reinitialized = true;
    report.classes_in_file = f.size(0);
    report.classes_in_model = m.size(0);
    it->second.tensor = m.detach().clone();
    if (auto b = given.find(head_b); b != given.end())
      b->second.tensor = own.tensors.at(head_b).detach().clone();
  }
}

// What a misfit's message adds: which GAP norm the file has, and timm's missing variants.
std::string misfit_hints(const std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
                         const ModelConfig& c, const WeightsFile& file) {
  std::string hints;
  // The GAP trap: timm's VisionTransformer normalises after pooling (fc_norm, its default for
  // global_pool='avg'); vit_jax, big_vision (models/vit.py: encoder_norm, then the mean) and timm
  // with fc_norm=False normalise the tokens before it.
  const bool file_norm = given.count("norm.weight") > 0, file_fc_norm = given.count("fc_norm.weight") > 0;
  if (c.pool == "gap" && file_norm && !own.tensors.count("norm.weight"))
    hints += "; the file normalises tokens before pooling: import with gap_norm=before_pool";
  if (c.pool == "gap" && file_fc_norm && !own.tensors.count("fc_norm.weight"))
    hints += "; the file normalises after pooling (timm fc_norm): import with gap_norm=after_pool";
  const TimmSupport support = timm_support(c);
  if (file.names != "vitlab" && !support.ok)
    hints += fmt::format(" (this model variant has no timm/JAX equivalent: {})", support.reason);
  return hints;
}

// IoError listing every missing, unexpected and misshaped tensor, by the file's names.
void check_fit(const std::map<std::string, SourcedTensor>& given, const ModelTensors& own,
               const ModelConfig& c, const WeightsFile& file) {
  std::vector<std::string> missing, unexpected, misshaped;
  for (const auto& [name, t] : own.tensors) {
    if (own.buffers.count(name)) continue;
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
    if (!own.tensors.count(name) || own.buffers.count(name)) unexpected.push_back("\"" + f.origin + "\"");
  if (missing.empty() && unexpected.empty() && misshaped.empty()) return;
  std::string msg = fmt::format("{}: {} weights do not fit model \"{}\"", file.path, file.names, c.name);
  if (!missing.empty()) msg += "; missing tensor(s): " + list(missing);
  if (!unexpected.empty()) msg += "; unexpected tensor(s): " + list(unexpected);
  if (!misshaped.empty()) msg += "; wrong shape or type: " + list(misshaped);
  throw IoError(msg + misfit_hints(given, own, c, file));
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
            {"pos_embed_resized", !resized.empty()},
            {"head_reinitialized", head_reinitialized},
            {"loaded", tensors - int64_t(fresh.size())},
            {"resized", resized},
            {"new", fresh},
            {"dropped", dropped},
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
  if (!resized.empty()) s += fmt::format("; resized: {}", list(resized));
  if (!fresh.empty()) s += fmt::format("; new (the model's own, not the file's): {}", list(fresh));
  if (!dropped.empty()) s += fmt::format("; dropped: {}", list(dropped));
  for (const auto& n : notes) s += "; " + n;
  return s;
}

WeightsFile read_weights_file(const std::string& path, WeightsFormat format, const ModelConfig& config) {
  WeightsFile out;
  out.path = path;
  out.format = format;
  switch (format) {
    case WeightsFormat::kVitlabCheckpoint:
      throw std::invalid_argument(path + ": vitlab checkpoints are read by load_weights (train/weights_init.h)");
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

WeightsImportReport fit_weights(ImageClassifierImpl& model, const WeightsFile& file,
                                const WeightsImportOptions& options) {
  const ModelConfig& c = model.config();
  WeightsImportReport report;
  report.source = file.path;
  report.format = file.format;
  report.pos_interp = options.pos_interp.value_or(
      file.format == WeightsFormat::kNpz ? PosInterp::kBilinear : PosInterp::kBicubic);
  report.names = file.names;
  report.notes = file.notes;

  ModelTensors own = model_tensors(model);
  std::map<std::string, SourcedTensor> given = by_vitlab_name(file);
  drop_config_buffers(given, own, c, file.path);
  drop_pretraining_parts(given, own, options, report);
  if (options.fresh_pos_embed) {
    std::vector<std::string> names;
    for (const auto& [name, t] : own.tensors)
      if (is_position_embedding(name) && !own.buffers.count(name)) names.push_back(name);
    keep_model_tensors(given, own, names, report.fresh);
  } else {
    adapt_pos_embeddings(given, own, c, file.path, report);
    adapt_relative_biases(given, own, c, file.path, report);
  }
  if (options.zero_head) {
    const bool resnet = c.family == ModelFamily::kResNet;
    const std::vector<std::string> head = {resnet ? "head.fc.weight" : "head.weight",
                                           resnet ? "head.fc.bias" : "head.bias"};
    keep_model_tensors(given, own, head, report.fresh);
    torch::NoGradGuard no_grad;
    for (const auto& name : head)
      if (given.count(name)) given[name].tensor.zero_();
  } else {
    reinit_head_for_classes(given, own, c, report);
  }
  check_fit(given, own, c, file);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : own.tensors)
    if (!own.buffers.count(name)) t.copy_(given.at(name).tensor);
  report.tensors = static_cast<int64_t>(given.size());
  return report;
}

}  // namespace vitlab
