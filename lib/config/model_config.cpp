#include "config/model_config.h"

#include "config/model_presets.h"

#include <stdexcept>

namespace vitlab {

const EnumNames<ModelFamily>& model_family_names() {
  static const EnumNames<ModelFamily> n = {
      {ModelFamily::kViT, "vit"}, {ModelFamily::kHybrid, "hybrid"}, {ModelFamily::kResNet, "resnet"}};
  return n;
}
const EnumNames<GapNorm>& gap_norm_names() {
  static const EnumNames<GapNorm> n = {{GapNorm::kAfterPool, "after_pool"},
                                       {GapNorm::kBeforePool, "before_pool"}};
  return n;
}
const EnumNames<ResNetStem>& resnet_stem_names() {
  static const EnumNames<ResNetStem> n = {{ResNetStem::kImageNet, "imagenet"},
                                          {ResNetStem::kSmall, "small"}};
  return n;
}
const EnumNames<ConvPadding>& conv_padding_names() {
  static const EnumNames<ConvPadding> n = {{ConvPadding::kSymmetric, "symmetric"},
                                           {ConvPadding::kSame, "same"}};
  return n;
}

int ModelConfig::stem_stride() const {
  // imagenet stem: stride-2 conv + stride-2 max-pool; small stem: stride 1.
  int stride = resnet_stem == ResNetStem::kImageNet ? 4 : 1;
  for (size_t i = 1; i < resnet_layers.size(); ++i) stride *= 2;  // stages after the first halve
  return stride;
}

int ModelConfig::grid_size() const {
  const int pixels = family == ModelFamily::kHybrid ? image_size / stem_stride() : image_size;
  return pixels / patch_size;
}

int ModelConfig::feature_width() const {
  return 256 * resnet_width * (1 << (resnet_layers.size() - 1));
}

void ModelConfig::read(JsonReader& r) {
  r.read("name", name);
  if (r.has("family")) {
    // Accepted so a resolved config reads back, but it must agree with the preset.
    ModelFamily f = family;
    r.read_enum("family", f, model_family_names());
    if (f != family)
      r.error("family", fmt::format("model \"{}\" is of family \"{}\"; the family follows the "
                                    "model name and cannot be changed",
                                    name, enum_name(family, model_family_names())));
  }
  r.read("image_size", image_size, 1, 8192);
  r.read("in_channels", in_channels, 1, 1024);
  r.read("num_classes", num_classes, 1, 1000000);
  r.read("patch_size", patch_size, 1, 8192);
  r.read("width", width, 1, 65536);
  r.read("depth", depth, 1, 1024);
  r.read("heads", heads, 1, 1024);
  r.read("mlp_dim", mlp_dim, 1, 1 << 20);
  r.read("pos_embed", pos_embed);
  r.read("pool", pool);
  r.read("class_token", class_token);
  r.read_enum("gap_norm", gap_norm, gap_norm_names());
  r.read("representation_size", representation_size, 0, 1 << 20);
  r.read("token_mixer", token_mixer);
  r.read("pool_mixer_size", pool_mixer_size, 1, 63);
  r.read("qkv_bias", qkv_bias);
  r.read("dropout", dropout, 0.0, 0.99);
  r.read("attn_dropout", attn_dropout, 0.0, 0.99);
  r.read("drop_path", drop_path, 0.0, 0.99);
  r.read("layer_norm_eps", layer_norm_eps, 1e-12, 1.0);
  r.read("head_zero_init", head_zero_init);
  r.read("resnet_layers", resnet_layers, 1, 256);
  r.read("resnet_width", resnet_width, 1, 64);
  r.read_enum("resnet_stem", resnet_stem, resnet_stem_names());
  r.read("resnet_preact", resnet_preact);
  r.read_enum("resnet_padding", resnet_padding, conv_padding_names());
  r.read("std_conv_eps", std_conv_eps, 1e-12, 1.0);
}

Json ModelConfig::to_json() const {
  return Json{{"name", name},
              {"family", enum_name(family, model_family_names())},
              {"image_size", image_size},
              {"in_channels", in_channels},
              {"num_classes", num_classes},
              {"patch_size", patch_size},
              {"width", width},
              {"depth", depth},
              {"heads", heads},
              {"mlp_dim", mlp_dim},
              {"pos_embed", pos_embed},
              {"pool", pool},
              {"class_token", class_token},
              {"gap_norm", enum_name(gap_norm, gap_norm_names())},
              {"representation_size", representation_size},
              {"token_mixer", token_mixer},
              {"pool_mixer_size", pool_mixer_size},
              {"qkv_bias", qkv_bias},
              {"dropout", dropout},
              {"attn_dropout", attn_dropout},
              {"drop_path", drop_path},
              {"layer_norm_eps", layer_norm_eps},
              {"head_zero_init", head_zero_init},
              {"resnet_layers", resnet_layers},
              {"resnet_width", resnet_width},
              {"resnet_stem", enum_name(resnet_stem, resnet_stem_names())},
              {"resnet_preact", resnet_preact},
              {"resnet_padding", enum_name(resnet_padding, conv_padding_names())},
              {"std_conv_eps", std_conv_eps}};
}

namespace {
ModelPartCheck installed_part_check = nullptr;

void part_check(const ModelConfig& c, const std::string& source, const std::string& path) {
  if (!installed_part_check)
    throw std::logic_error("ModelConfig::validate: no model part check installed "
                           "(call install_model_part_checks() at start)");
  installed_part_check(c, source, path);
}
}  // namespace

void set_model_part_check(ModelPartCheck check) {
  installed_part_check = check;
}

void ModelConfig::validate(const std::string& source, const std::string& path) const {
  auto bad = [&](const std::string& key, const std::string& message) {
    config_error(source, join_path(path, key), message);
  };
  const bool transformer = family != ModelFamily::kResNet;
  const bool has_stem = family != ModelFamily::kViT;

  if (has_stem) {
    if (resnet_layers.empty() || resnet_layers.size() > 4)
      bad("resnet_layers", fmt::format("expected 1 to 4 stages, got {}", resnet_layers.size()));
    const int stride = stem_stride();
    // A plain ResNet pools whatever map it gets; a hybrid needs an exact token grid.
    if (family == ModelFamily::kHybrid && image_size % stride != 0)
      bad("image_size", fmt::format("{} is not divisible by the ResNet stem's stride {} "
                                    "(resnet_stem \"{}\", {} stages)",
                                    image_size, stride, enum_name(resnet_stem, resnet_stem_names()),
                                    resnet_layers.size()));
  }
  part_check(*this, source, path);
  if (!transformer) return;

  const int pixels = family == ModelFamily::kHybrid ? image_size / stem_stride() : image_size;
  if (pixels % patch_size != 0) {
    if (family == ModelFamily::kHybrid)
      bad("patch_size", fmt::format("the stem's {0}x{0} feature map (image_size {1} / stride {2}) "
                                    "is not divisible by patch_size {3}",
                                    pixels, image_size, stem_stride(), patch_size));
    bad("image_size", fmt::format("{} is not divisible by patch_size {}", image_size, patch_size));
  }
  if (width % heads != 0)
    bad("width", fmt::format("{} is not divisible by heads {}", width, heads));
}

ModelConfig read_model_config(const Json& json, const std::string& source, const std::string& path) {
  JsonReader r(json, path, source);
  if (!r.has("name"))
    r.error("name", "missing; choose a model from `vitlab models` (e.g. \"vit_b16\")");
  std::string name;
  r.read("name", name);
  ModelConfig config = find_model_preset(name, source, join_path(path, "name")).config;
  config.read(r);
  r.finish();
  config.validate(source, path);
  return config;
}

}  // namespace vitlab
