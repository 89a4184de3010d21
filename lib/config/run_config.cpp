#include "config/run_config.h"

#include "core/cuda_util.h"

#include <torch/torch.h>

namespace vitlab {

const EnumNames<InitHead>& init_head_names() {
  static const EnumNames<InitHead> n = {{InitHead::kZero, "zero"}, {InitHead::kKeep, "keep"}};
  return n;
}
const EnumNames<InitPosEmbed>& init_pos_embed_names() {
  static const EnumNames<InitPosEmbed> n = {{InitPosEmbed::kAuto, "auto"},
                                            {InitPosEmbed::kBilinear, "bilinear"},
                                            {InitPosEmbed::kBicubic, "bicubic"},
                                            {InitPosEmbed::kFresh, "fresh"}};
  return n;
}

Json RunConfig::to_json() const {
  return Json{{"description", description},
              {"seed", seed},
              {"device", device},
              {"init_from", init_from},
              {"init_head", enum_name(init_head, init_head_names())},
              {"init_pos_embed", enum_name(init_pos_embed, init_pos_embed_names())},
              {"model", model.to_json()},
              {"data", data.to_json()},
              {"train", train.to_json()}};
}

namespace {
// The masked-patch objective needs patch tokens, and labels it does not use must not be mixed.
void check_objective(const RunConfig& c, const std::string& source) {
  if (c.train.objective != Objective::kMaskedPatch) return;
  if (c.model.family == ModelFamily::kResNet)
    config_error(source, "train.objective",
                 fmt::format("\"masked_patch\" needs a model with patch tokens; \"{}\" is a ResNet "
                             "(use a ViT or hybrid model)", c.model.name));
  if (c.data.augment.mixup_alpha > 0 || c.data.augment.cutmix_alpha > 0)
    config_error(source, c.data.augment.mixup_alpha > 0 ? "data.augment.mixup_alpha" : "data.augment.cutmix_alpha",
                 "mixes labels, which the \"masked_patch\" objective does not use; set it to 0");
}
}  // namespace

void RunConfig::validate(const std::string& source) const {
  model.validate(source, "model");
  data.validate(source, "data");
  train.validate(source, "train");
  check_objective(*this, source);
  if (data.dataset == DatasetKind::kSynthetic) {
    const int size = data.image_size > 0 ? data.image_size : data.synthetic_image_size;
    if (size != model.image_size)
      config_error(source, "model.image_size",
                   fmt::format("{} does not match the synthetic data's image size {} "
                               "(data.image_size or data.synthetic_image_size)",
                               model.image_size, size));
    if (data.synthetic_channels != model.in_channels)
      config_error(source, "model.in_channels",
                   fmt::format("{} does not match data.synthetic_channels {}", model.in_channels,
                               data.synthetic_channels));
    if (data.synthetic_classes != model.num_classes)
      config_error(source, "model.num_classes",
                   fmt::format("{} does not match data.synthetic_classes {}", model.num_classes,
                               data.synthetic_classes));
  }
  if (train.precision == Precision::kBf16 && device == "cpu")
    config_error(source, "train.precision", "\"bf16\" is for CUDA; CPU runs train in \"fp32\"");
  if (!is_device_string(device))
    config_error(source, "device",
                 fmt::format("\"{}\" is not a device; use cpu, cuda, cuda:N or auto", device));
}

bool is_device_string(const std::string& text) {
  if (text == "cpu" || text == "auto" || text == "cuda") return true;
  if (text.rfind("cuda:", 0) != 0 || text.size() == 5 || text.size() > 9) return false;
  return text.find_first_not_of("0123456789", 5) == std::string::npos;
}

bool is_bookkeeping_key(const std::string& dotted_path) {
  return dotted_path == "device" || dotted_path == "train.log_every" ||
         dotted_path == "train.checkpoint_every";
}

Json without_bookkeeping_keys(Json resolved) {
  resolved.erase("device");
  if (resolved.contains("train") && resolved["train"].is_object()) {
    resolved["train"].erase("log_every");
    resolved["train"].erase("checkpoint_every");
  }
  return resolved;
}

RunConfig read_run_config(const Json& json, const std::string& source) {
  RunConfig c;
  JsonReader r(json, "", source);
  r.read("description", c.description);
  r.read("seed", c.seed, 0);
  r.read("device", c.device);
  r.read("init_from", c.init_from);
  r.read_enum("init_head", c.init_head, init_head_names());
  r.read_enum("init_pos_embed", c.init_pos_embed, init_pos_embed_names());
  if (!r.has("model")) r.error("model", "missing; every run needs a model (see `vitlab models`)");
  JsonReader model_reader = r.child("model");  // marks the key as known
  c.model = read_model_config(json.at("model"), source, "model");
  JsonReader data_reader = r.child("data");
  c.data.read(data_reader);
  data_reader.finish();
  JsonReader train_reader = r.child("train");
  c.train.read(train_reader);
  train_reader.finish();
  r.finish();
  c.validate(source);
  return c;
}

void apply_override(Json& json, const std::string& assignment, const std::string& source) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("{}: \"{}\" is not of the form key=value (e.g. "
                                  "model.pos_embed=learned_2d)",
                                  source, assignment));
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  Json value;
  try {
    value = Json::parse(text);
  } catch (const std::exception&) {  // parse_error, or out_of_range for a number like 1e999
    value = text;  // a bare word: a string
    try {
      value.dump();  // what the run folder and the checkpoint will store: must be UTF-8
    } catch (const Json::type_error&) {
      throw ConfigError(fmt::format("{}: {}: the value is not valid UTF-8 text", source, key));
    }
  }
  Json* node = &json;
  std::string walked;
  size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty())
      throw ConfigError(fmt::format("{}: \"{}\" has an empty path component", source, key));
    if (!node->is_object())
      throw ConfigError(fmt::format("{}: {}: cannot set a key inside a non-object ({}); no {}.{}",
                                    source, walked, json_brief(*node), walked, part));
    walked = join_path(walked, part);
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    if (node->is_null()) *node = Json::object();
    start = dot + 1;
  }
}

Json with_overrides(Json json, const std::vector<std::string>& assignments, const std::string& source) {
  for (const auto& a : assignments) apply_override(json, a, source);
  return json;
}

c10::Device DeviceChoice::use() const {
  if (!cuda) return torch::Device(torch::kCPU);
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  cuda::set_device(device);
  return device;
}

DeviceChoice parse_device(const std::string& text, const std::string& key) {
  DeviceChoice d;
  if (text == "cpu") return d;
  if (text == "auto") {
    d.cuda = torch::cuda::is_available();
    return d;
  }
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!is_device_string(text))
      throw ConfigError(fmt::format("{}: \"{}\" is not a device; use cpu, cuda, cuda:N or auto",
                                    key, text));
    if (text.size() > 5) d.index = std::stoi(text.substr(5));
    if (!torch::cuda::is_available())
      throw ConfigError(fmt::format("{}: \"{}\" asked for, but this build or machine has no CUDA "
                                    "device; use cpu",
                                    key, text));
    if (d.index >= static_cast<int>(torch::cuda::device_count()))
      throw ConfigError(fmt::format("{}: \"{}\" asked for, but only {} CUDA device(s) exist", key,
                                    text, torch::cuda::device_count()));
    d.cuda = true;
    return d;
  }
  throw ConfigError(fmt::format("{}: \"{}\" is not a device; use cpu, cuda, cuda:N or auto", key, text));
}

}  // namespace vitlab
