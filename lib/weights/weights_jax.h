// The original JAX ViT checkpoints (.npz) -> timm parameter names and PyTorch layouts.
//
// Names, from google-research/vision_transformer (vit_jax/models_vit.py, models_resnet.py) and
// big_vision (as timm's _load_weights reads both):
//   embedding/kernel (p, p, C, D) HWIO  -> patch_embed.proj.weight (D, C, p, p)
//   embedding/bias, cls (1, 1, D)       -> patch_embed.proj.bias, cls_token
//   Transformer/posembed_input/pos_embedding (vit_jax) or pos_embedding (big_vision) -> pos_embed
//   Transformer/encoderblock_i/LayerNorm_0 -> blocks.i.norm1;  LayerNorm_2 (vit_jax) or
//     LayerNorm_1 (big_vision) -> blocks.i.norm2  (scale -> weight)
//   .../MultiHeadDotProductAttention_{1|0}/{query,key,value}/kernel (D, H, d), bias (H, d)
//     -> blocks.i.attn.qkv.{weight (3D, D), bias (3D)};  out/kernel (H, d, D) -> attn.proj
//   .../MlpBlock_{3|0}/Dense_{0,1}/kernel (in, out) -> blocks.i.mlp.fc{1,2}.weight (out, in)
//   Transformer/encoderblock/... (big_vision scanned layers: a leading depth axis) likewise
//   Transformer/encoder_norm -> norm;  head/kernel (D, K) -> head.weight (K, D)
//   pre_logits/kernel -> vitlab's pre_logits.weight (timm 1.0 has no pre-logits layer)
//   hybrid ResNet: conv_root, gn_root -> patch_embed.backbone.stem.{conv,norm};
//     block{s}/unit{u}/{conv1..3,gn1..3,conv_proj,gn_proj}
//     -> patch_embed.backbone.stages.{s-1}.blocks.{u-1}.{conv1..3,norm1..3,downsample.{conv,norm}}
// A file-wide prefix "opt/target/" (vit_jax training state), "params/" or "params/img/"
// (big_vision) is stripped; other entries of such files (optimiser state, other towers) are
// skipped and counted. Any other unknown name is an IoError naming the file and the entry.
//
// Known numerical differences of the JAX models that no name mapping can remove: vit_jax's MLP
// uses the tanh approximation of GELU (flax nn.gelu), its hybrid standardises conv weights as
// (w - mean) / (std + 1e-5) and its GroupNorm uses eps 1e-6; timm and vitlab use exact GELU,
// (w - mean) / sqrt(var + eps) and GroupNorm eps 1e-5.
#pragma once
#include <string>

#include "weights/weights_tensors.h"

namespace vitlab {

struct JaxConversion {
  SourcedTensors tensors;  // timm names (origin = the .npz entry names)
  std::string dialect;     // "vit_jax" or "big_vision"
  std::string prefix;      // the stripped prefix, "" if none
  int64_t skipped = 0;     // entries outside the prefix that were skipped
};

// `entries` as read by read_npz. `source` (the file) prefixes every error.
JaxConversion jax_to_timm(const NamedTensors& entries, const std::string& source);

}  // namespace vitlab
