#include "config/model_presets.h"

namespace vitlab {
namespace {

ModelConfig vit(const std::string& name, int patch, int width, int depth, int heads, int mlp) {
  ModelConfig c;
  c.name = name;
  c.family = ModelFamily::kViT;
  c.patch_size = patch;
  c.width = width;
  c.depth = depth;
  c.heads = heads;
  c.mlp_dim = mlp;
  return c;
}

ModelConfig bit(const std::string& name, std::vector<int64_t> layers, int width_factor) {
  ModelConfig c;
  c.name = name;
  c.family = ModelFamily::kResNet;
  c.resnet_layers = std::move(layers);
  c.resnet_width = width_factor;
  c.resnet_preact = true;
  c.head_zero_init = true;  // BiT zero-initialises its head
  return c;
}

// The paper's small-data reference recipe: 28x28 grey images, 10 classes.
ModelConfig small_images(ModelConfig c) {
  c.image_size = 28;
  c.in_channels = 1;
  c.num_classes = 10;
  return c;
}

std::vector<ModelPreset> make_presets() {
  std::vector<ModelPreset> p;
  auto add = [&](ModelConfig c, std::string description) {
    p.push_back({c.name, std::move(description), std::move(c)});
  };
  // ViT sizes of the paper's Table 1 (Ti and S as in DeiT); 224 px, 1000 classes.
  add(vit("vit_ti16", 16, 192, 12, 3, 768), "ViT-Ti/16 (DeiT-Ti): D=192, 12 layers, 3 heads");
  add(vit("vit_s16", 16, 384, 12, 6, 1536), "ViT-S/16 (DeiT-S): D=384, 12 layers, 6 heads");
  add(vit("vit_s32", 32, 384, 12, 6, 1536), "ViT-S/32: D=384, 12 layers, 6 heads");
  add(vit("vit_b16", 16, 768, 12, 12, 3072), "ViT-B/16 (paper): D=768, 12 layers, 12 heads");
  add(vit("vit_b32", 32, 768, 12, 12, 3072), "ViT-B/32 (paper): D=768, 12 layers, 12 heads");
  add(vit("vit_l16", 16, 1024, 24, 16, 4096), "ViT-L/16 (paper): D=1024, 24 layers, 16 heads");
  add(vit("vit_l32", 32, 1024, 24, 16, 4096), "ViT-L/32 (paper): D=1024, 24 layers, 16 heads");
  add(vit("vit_h14", 14, 1280, 32, 16, 5120), "ViT-H/14 (paper): D=1280, 32 layers, 16 heads");
  add(small_images(vit("vit_tiny_p4_28", 4, 192, 9, 3, 768)),
      "small ViT for 28x28 grey images (Fashion-MNIST recipe): D=192, 9 layers, 3 heads, patch 4");

  // Token-mixer variants beyond the paper (MetaFormer family): ViT-S/16 with another mixer, no
  // class token, a GAP head.
  const auto metaformer_s16 = [](const char* name, const char* mixer, const char* pos_embed) {
    auto c = vit(name, 16, 384, 12, 6, 1536);
    c.token_mixer = mixer;
    c.pos_embed = pos_embed;
    c.class_token = false;
    c.pool = "gap";
    return c;
  };
  add(metaformer_s16("axial_s16", "axial", "learned_1d"),
      "ViT-S/16 with axial attention (rows, then columns) instead of full attention");
  add(metaformer_s16("poolformer_s16", "pooling", "none"),
      "ViT-S/16 with a 3x3 average-pooling token mixer (PoolFormer) instead of attention");
  add(metaformer_s16("identityformer_s16", "identity", "none"),
      "ViT-S/16 with no token mixer at all (IdentityFormer, MetaFormer's baseline)");

  // Hybrids: a ResNet (v1-style, post-activation, GroupNorm + weight standardisation, TF SAME
  // padding as in vit_jax and timm) stem whose feature map becomes the tokens.
  {
    auto c = vit("hybrid_r50_b16", 1, 768, 12, 12, 3072);
    c.family = ModelFamily::kHybrid;
    c.resnet_layers = {3, 4, 9};
    c.resnet_preact = false;
    c.resnet_padding = ConvPadding::kSame;
    add(c, "R50+ViT-B/16 hybrid (paper): 3-stage ResNet-50 stem, stride 16, then ViT-B");
  }
  {
    auto c = small_images(vit("hybrid_tiny_28", 1, 192, 6, 3, 768));
    c.family = ModelFamily::kHybrid;
    c.resnet_layers = {1, 1};
    c.resnet_stem = ResNetStem::kSmall;
    c.resnet_preact = false;
    c.patch_size = 2;
    add(c, "small hybrid for 28x28 images: 2-stage ResNet stem (stride 2), patch 2, D=192, 6 layers");
  }

  // BiT ResNetV2 baselines (pre-activation, GroupNorm, weight-standardised convolutions).
  add(bit("bit_r26x1", {2, 2, 2, 2}, 1), "BiT ResNetV2-26x1");
  add(bit("bit_r50x1", {3, 4, 6, 3}, 1), "BiT ResNetV2-50x1 (BiT-M/S R50x1)");
  add(bit("bit_r50x3", {3, 4, 6, 3}, 3), "BiT ResNetV2-50x3");
  add(bit("bit_r101x1", {3, 4, 23, 3}, 1), "BiT ResNetV2-101x1");
  add(bit("bit_r101x3", {3, 4, 23, 3}, 3), "BiT ResNetV2-101x3");
  add(bit("bit_r152x1", {3, 8, 36, 3}, 1), "BiT ResNetV2-152x1");
  add(bit("bit_r152x2", {3, 8, 36, 3}, 2), "BiT ResNetV2-152x2");
  {
    auto c = small_images(bit("bit_r26_28", {2, 2, 2, 2}, 1));
    c.resnet_stem = ResNetStem::kSmall;
    add(c, "BiT ResNetV2-26x1 with the small-image stem (3x3, no max-pool) for 28-32 px inputs");
  }
  return p;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = make_presets();
  return presets;
}

const ModelPreset& find_model_preset(const std::string& name, const std::string& source,
                                     const std::string& path) {
  for (const auto& p : model_presets())
    if (p.name == name) return p;
  std::string known;
  for (const auto& p : model_presets()) known += (known.empty() ? "" : ", ") + p.name;
  config_error(source, path, fmt::format("unknown model \"{}\"; known models: {}", name, known));
}

}  // namespace vitlab
