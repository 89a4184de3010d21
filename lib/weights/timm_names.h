// vitlab <-> timm parameter names and layouts, and the timm constructor arguments of a config.
//
// Checked against timm 1.0 (timm/models/vision_transformer.py, resnetv2.py,
// layers/hybrid_embed.py, layers/std_conv.py). vitlab's modules already use timm's names except:
//   ViT / hybrid : vitlab `pos.pos_embed`            <-> timm `pos_embed`
//                  vitlab `pos.fixed` (sincos_2d buffer) -> timm `pos_embed` (the table, exported
//                  as timm's learned embedding; on import it must equal the table)
//   BiT ResNetV2 : vitlab `backbone.{stem,stages,norm}.*` <-> timm `{stem,stages,norm}.*`
//                  vitlab `head.fc.weight` (K, C)    <-> timm `head.fc.weight` (K, C, 1, 1)
// The hybrid's ResNet is `patch_embed.backbone.*` in both.
#pragma once
#include <string>

#include "config/model_config.h"
#include "weights/weights_tensors.h"

namespace vitlab {

// Whether timm can build this variant with these parameter names; `reason` says why not.
struct TimmSupport {
  bool ok = true;
  std::string reason;
};
TimmSupport timm_support(const ModelConfig& config);

// vitlab module state (module_state()) -> timm state_dict. Requires timm_support(config).ok.
// Buffers that timm does not have are dropped.
NamedTensors vitlab_to_timm(const ModelConfig& config, const NamedTensors& state);

// timm names and layouts -> vitlab's. Names this mapping does not know pass through unchanged
// (the loader then reports them as unexpected, naming `origin`).
SourcedTensors timm_to_vitlab(const ModelConfig& config, SourcedTensors tensors);

// The export sidecar's "timm" object: how to build the same network in timm.
//   {"class": "VisionTransformer" | "ResNetV2", "kwargs": {...},
//    "backbone": {"class": "ResNetV2", "kwargs": {...}}   (hybrid: embed_layer=HybridEmbed),
//    "conv_layer": {"name": "StdConv2d" | "StdConv2dSame", "eps": 1e-8}   (ResNet parts),
//    "norm_eps": 1e-6 (ViT LayerNorm eps), "model": "vit_base_patch16_224" | null (a registered
//    timm model with the same architecture), "create_kwargs": {...} (for timm.create_model),
//    "notes": [...]}
// Null when timm lacks the variant.
Json timm_model_args(const ModelConfig& config);

}  // namespace vitlab
