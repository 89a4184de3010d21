// Model settings: a preset (named in the factory table) gives every field, explicit JSON fields
// win, validate() rejects combinations that cannot be built. Variants are data, not subclasses.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

enum class ModelFamily { kViT, kHybrid, kResNet };
enum class GapNorm { kAfterPool, kBeforePool };
enum class ResNetStem { kImageNet, kSmall };
enum class ConvPadding { kSymmetric, kSame };

const EnumNames<ModelFamily>& model_family_names();
const EnumNames<GapNorm>& gap_norm_names();
const EnumNames<ResNetStem>& resnet_stem_names();
const EnumNames<ConvPadding>& conv_padding_names();

struct ModelConfig {
  std::string name;  // factory preset this config started from
  ModelFamily family = ModelFamily::kViT;  // fixed by the preset

  // Input and output.
  int image_size = 224;
  int in_channels = 3;
  int num_classes = 1000;

  // Transformer (families vit and hybrid).
  int patch_size = 16;  // on the image (vit) or on the stem's feature map (hybrid)
  int width = 768;      // D
  int depth = 12;
  int heads = 12;
  int mlp_dim = 3072;
  // The transformer's parts, by their names in the models layer's tables (models/parts.h).
  std::string pos_embed = "learned_1d";
  std::string pool = "cls";
  bool class_token = true;
  GapNorm gap_norm = GapNorm::kAfterPool;  // timm's fc_norm (after) or big_vision's (before)
  int representation_size = 0;  // tanh pre-logits layer width; 0 = none
  std::string token_mixer = "attention";
  int pool_mixer_size = 3;  // pooling mixer window
  bool qkv_bias = true;
  double dropout = 0.0;
  double attn_dropout = 0.0;
  double drop_path = 0.0;  // stochastic depth rate of the last block (linear in depth)
  double layer_norm_eps = 1e-6;
  bool head_zero_init = false;  // zero-initialised classifier (fine-tuning recipe)

  // ResNetV2 (family resnet: the whole model; family hybrid: the stem).
  std::vector<int64_t> resnet_layers = {3, 4, 6, 3};
  int resnet_width = 1;  // width multiplier (BiT's x1, x3, ...)
  ResNetStem resnet_stem = ResNetStem::kImageNet;
  bool resnet_preact = true;  // BiT's pre-activation blocks; the hybrid stem uses post-activation
  ConvPadding resnet_padding = ConvPadding::kSymmetric;  // kSame = TF "SAME" as in vit_jax/timm
  double std_conv_eps = 1e-8;  // weight standardisation epsilon

  // Derived sizes.
  int stem_stride() const;    // hybrid/resnet: input pixels per feature-map cell
  int grid_size() const;      // tokens per side (vit/hybrid)
  int num_patches() const { return grid_size() * grid_size(); }
  int num_prefix_tokens() const { return class_token ? 1 : 0; }  // tokens before the patches
  int feature_width() const;  // resnet: channels of the last stage

  void read(JsonReader& reader);  // overlays the fields present in the JSON object
  Json to_json() const;           // every field, so the result reads back to the same struct
  // Throws ConfigError naming `path.field` for any invalid value or combination, the part
  // names and the rules of the parts (the installed ModelPartCheck) included.
  void validate(const std::string& source = "", const std::string& path = "model") const;
};

// The check of the transformer's parts (names and the rules each part states). The parts live in
// the models layer, which this layer cannot see: each program installs the check once at start
// (models/parts.h, install_model_part_checks). validate() without one is a logic error.
using ModelPartCheck = void (*)(const ModelConfig& c, const std::string& source,
                                const std::string& path);
void set_model_part_check(ModelPartCheck check);

// Reads `model` from JSON: `name` selects the preset (an unknown name lists the known ones),
// then the other fields override it, then the result is validated.
ModelConfig read_model_config(const Json& json, const std::string& source = "",
                              const std::string& path = "model");

}  // namespace vitlab
