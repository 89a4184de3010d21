#include "weights/timm_names.h"

#include <cmath>

namespace vitlab {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool is_transformer(const ModelConfig& c) { return c.family != ModelFamily::kResNet; }

// timm's ResNetV2 stems: 'fixed' (zero pad 1 + 3x3/2 max-pool, BiT) matches vitlab's symmetric
// padding; 'same' (TF SAME conv and max-pool, the ViT hybrids) matches vitlab's same padding.
// For post-activation stems (ReLU before the pool) '' and 'fixed' compute the same thing.
const char* stem_type(const ModelConfig& c) {
  return c.resnet_padding == ConvPadding::kSame ? "same" : "fixed";
}

Json conv_layer(const ModelConfig& c) {
  return {{"name", c.resnet_padding == ConvPadding::kSame ? "StdConv2dSame" : "StdConv2d"},
          {"eps", c.std_conv_eps}};
}

Json resnet_kwargs(const ModelConfig& c, int num_classes, const char* global_pool) {
  return {{"layers", c.resnet_layers},   {"num_classes", num_classes},
          {"in_chans", c.in_channels},   {"width_factor", c.resnet_width},
          {"preact", c.resnet_preact},   {"stem_type", stem_type(c)},
          {"global_pool", global_pool}};
}

// The registered timm ViT with this exact architecture, if any (created at any img_size).
std::string registered_vit(const ModelConfig& c) {
  struct Entry { int patch, width, depth, heads, mlp; const char* name; };
  static const Entry table[] = {
      {16, 192, 12, 3, 768, "vit_tiny_patch16_224"},    {16, 384, 12, 6, 1536, "vit_small_patch16_224"},
      {32, 384, 12, 6, 1536, "vit_small_patch32_224"},  {16, 768, 12, 12, 3072, "vit_base_patch16_224"},
      {32, 768, 12, 12, 3072, "vit_base_patch32_224"},  {16, 1024, 24, 16, 4096, "vit_large_patch16_224"},
      {32, 1024, 24, 16, 4096, "vit_large_patch32_224"}, {14, 1280, 32, 16, 5120, "vit_huge_patch14_224"}};
  const bool plain = c.family == ModelFamily::kViT && c.pool == "cls" && c.class_token &&
                     c.pos_embed == "learned_1d" && c.qkv_bias && c.layer_norm_eps == 1e-6;
  if (!plain) return "";
  for (const auto& e : table)
    if (c.patch_size == e.patch && c.width == e.width && c.depth == e.depth && c.heads == e.heads &&
        c.mlp_dim == e.mlp)
      return e.name;
  return "";
}

std::string registered_bit(const ModelConfig& c) {
  if (!c.resnet_preact || c.resnet_padding != ConvPadding::kSymmetric || c.std_conv_eps != 1e-8)
    return "";
  struct Entry { std::vector<int64_t> layers; int width; const char* name; };
  static const Entry table[] = {{{3, 4, 6, 3}, 1, "resnetv2_50x1_bit"},   {{3, 4, 6, 3}, 3, "resnetv2_50x3_bit"},
                                {{3, 4, 23, 3}, 1, "resnetv2_101x1_bit"}, {{3, 4, 23, 3}, 3, "resnetv2_101x3_bit"},
                                {{3, 8, 36, 3}, 2, "resnetv2_152x2_bit"}, {{3, 8, 36, 3}, 4, "resnetv2_152x4_bit"}};
  for (const auto& e : table)
    if (c.resnet_layers == e.layers && c.resnet_width == e.width) return e.name;
  return "";
}

}  // namespace

TimmSupport timm_support(const ModelConfig& c) {
  auto no = [](std::string why) { return TimmSupport{false, std::move(why)}; };
  if (c.family != ModelFamily::kViT && c.resnet_stem == ResNetStem::kSmall)
    return no("resnet_stem \"small\" (3x3 stride-1 stem without max-pool): every timm ResNetV2 "
              "stem downsamples by 4");
  if (!is_transformer(c)) return {};
  if (c.token_mixer != "attention")
    return no(fmt::format("token_mixer \"{}\": timm's VisionTransformer mixes tokens with full "
                          "self-attention only",
                          c.token_mixer));
  if (c.pos_embed == "learned_2d")
    return no("pos_embed \"learned_2d\": timm's VisionTransformer has no factorised row/column "
              "position embedding");
  if (c.pos_embed == "relative")
    return no("pos_embed \"relative\": timm's VisionTransformer has no relative position bias");
  if (c.representation_size > 0)
    return no("representation_size > 0: timm 1.0's VisionTransformer has no tanh pre-logits layer");
  return {};
}

NamedTensors vitlab_to_timm(const ModelConfig& c, const NamedTensors& state) {
  NamedTensors out;
  for (const auto& [name, tensor] : state) {
    auto t = tensor.detach();
    if (is_transformer(c)) {
      if (name == "pos.pos_embed" || name == "pos.fixed") {
        // sincos_2d: the fixed table becomes timm's (learned) pos_embed; same function.
        out.emplace_back("pos_embed", t);
      } else if (starts_with(name, "pos.") || name.find(".relative.") != std::string::npos) {
        continue;  // other embeddings are not timm-compatible; timm_support() rejected them
      } else if (starts_with(name, "masked_patch.")) {
        continue;  // the masked-patch pretraining head: timm's ViT has no such part
      } else {
        out.emplace_back(name, t);
      }
      continue;
    }
    if (starts_with(name, "backbone.")) {
      out.emplace_back(name.substr(9), t);
    } else if (name == "head.fc.weight") {
      out.emplace_back(name, t.reshape({t.size(0), t.size(1), 1, 1}));  // timm: 1x1 conv head
    } else {
      out.emplace_back(name, t);
    }
  }
  return out;
}

SourcedTensors timm_to_vitlab(const ModelConfig& c, SourcedTensors tensors) {
  for (auto& t : tensors) {
    if (is_transformer(c)) {
      if (t.name == "pos_embed")
        t.name = c.pos_embed == "sincos_2d" ? "pos.fixed" : "pos.pos_embed";
      continue;
    }
    if (t.name == "head.fc.weight" && t.tensor.dim() == 4 && t.tensor.size(2) == 1 &&
        t.tensor.size(3) == 1) {
      t.tensor = t.tensor.reshape({t.tensor.size(0), t.tensor.size(1)});
    } else if (starts_with(t.name, "stem.") || starts_with(t.name, "stages.") ||
               starts_with(t.name, "norm.")) {
      t.name = "backbone." + t.name;
    }
  }
  return tensors;
}

Json timm_model_args(const ModelConfig& c) {
  if (!timm_support(c).ok) return nullptr;
  Json notes = Json::array();
  Json out;
  if (c.family == ModelFamily::kResNet) {
    out["class"] = "ResNetV2";
    out["kwargs"] = resnet_kwargs(c, c.num_classes, "avg");
    out["conv_layer"] = conv_layer(c);
    const std::string name = registered_bit(c);
    out["model"] = name.empty() ? Json(nullptr) : Json(name);
    out["create_kwargs"] = {{"num_classes", c.num_classes}, {"in_chans", c.in_channels}};
    notes.push_back(fmt::format("head.fc is timm's 1x1 convolution: weight (K, C, 1, 1); "
                                "build convolutions with {}(eps={})",
                                conv_layer(c)["name"].get<std::string>(), c.std_conv_eps));
    out["notes"] = notes;
    return out;
  }
  const double mlp_ratio = static_cast<double>(c.mlp_dim) / c.width;
  Json kwargs = {{"img_size", c.image_size},
                 {"patch_size", c.patch_size},
                 {"in_chans", c.in_channels},
                 {"num_classes", c.num_classes},
                 {"embed_dim", c.width},
                 {"depth", c.depth},
                 {"num_heads", c.heads},
                 {"mlp_ratio", mlp_ratio},
                 {"qkv_bias", c.qkv_bias},
                 {"class_token", c.class_token},
                 {"global_pool", c.pool == "cls" ? "token" : "avg"},
                 // timm's fc_norm: LayerNorm after average pooling (vitlab gap_norm after_pool).
                 {"fc_norm", c.pool == "gap" && c.gap_norm == GapNorm::kAfterPool},
                 {"no_embed_class", false},
                 {"pos_embed", c.pos_embed == "none" ? "none" : "learn"}};
  out["class"] = "VisionTransformer";
  out["kwargs"] = kwargs;
  out["norm_eps"] = c.layer_norm_eps;
  if (static_cast<int>(c.width * mlp_ratio) != c.mlp_dim)
    notes.push_back(fmt::format("mlp_dim {} is not int(embed_dim * mlp_ratio) in floating point; "
                                "pass mlp_layer with hidden_features={}",
                                c.mlp_dim, c.mlp_dim));
  if (c.layer_norm_eps != 1e-6)
    notes.push_back(fmt::format("LayerNorm eps {} differs from timm's 1e-6: pass "
                                "norm_layer=partial(nn.LayerNorm, eps={})",
                                c.layer_norm_eps, c.layer_norm_eps));
  if (c.pos_embed == "sincos_2d")
    notes.push_back("pos_embed holds vitlab's fixed 2-D sin-cos table (zeros for the class token); "
                    "timm has no fixed sin-cos option and will treat it as a learned parameter");
  if (c.pos_embed == "none")
    notes.push_back("pos_embed='none' needs a timm whose VisionTransformer accepts it (1.0.x); "
                    "with an older timm, use a zero learned pos_embed");
  std::string name = registered_vit(c);
  if (c.family == ModelFamily::kHybrid) {
    out["backbone"] = {{"class", "ResNetV2"}, {"kwargs", resnet_kwargs(c, 0, "")}};
    out["conv_layer"] = conv_layer(c);
    notes.push_back("hybrid: embed_layer=partial(HybridEmbed, backbone=ResNetV2(**backbone.kwargs, "
                    "conv_layer=partial(conv_layer.name, eps=conv_layer.eps)))");
    const bool r50_b16 = c.resnet_layers == std::vector<int64_t>{3, 4, 9} && c.resnet_width == 1 &&
                         !c.resnet_preact && c.resnet_padding == ConvPadding::kSame &&
                         c.std_conv_eps == 1e-8 && c.patch_size == 1 && c.width == 768 &&
                         c.depth == 12 && c.heads == 12 && c.mlp_dim == 3072 &&
                         c.pool == "cls" && c.pos_embed == "learned_1d" &&
                         c.qkv_bias && c.layer_norm_eps == 1e-6;
    name = r50_b16 ? "vit_base_r50_s16_224" : "";
  }
  out["model"] = name.empty() ? Json(nullptr) : Json(name);
  out["create_kwargs"] = {{"num_classes", c.num_classes}, {"img_size", c.image_size},
                          {"in_chans", c.in_channels}};
  out["notes"] = notes;
  return out;
}

}  // namespace vitlab
