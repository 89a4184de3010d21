// Vision Transformer (Dosovitskiy et al. 2021), the paper's equations 1-4:
//   z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos                    (1)
//   z'_l = MSA(LN(z_{l-1})) + z_{l-1}                                   (2)
//   z_l = MLP(LN(z'_l)) + z'_l                                          (3)
//   y = LN(z_L^0)                                                       (4)
// with the ablation knobs as data (ModelConfig): the token mixer (MSA or another), the position
// embedding and the pooling head are parts from models/parts.h; the hybrid's "patches" are the
// cells of a ResNet stem's feature map. Parameter names follow timm's VisionTransformer.
#pragma once
#include <torch/torch.h>

#include "models/classifier.h"
#include "models/layers.h"
#include "models/masked_patch.h"
#include "models/parts.h"
#include "models/resnetv2.h"

namespace vitlab {

// Pre-LN transformer block, eq. 2-3, with a registered token mixer.
struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& c, double drop_path_rate);
  // z_{l-1} -> z_l, both as Residual (stream + branch): each residual add happens in the next
  // LayerNorm (ops::add_layer_norm).
  Residual forward(const Residual& z);

  double drop_path_rate;
  LayerNorm norm1{nullptr}, norm2{nullptr};
  TokenMixerModule mixer;      // registered under the part's module name ("attn", "axial", ...)
  AttentionBiasModule relative;  // the relative position embedding's bias, or null
  Mlp mlp{nullptr};
  bool mixer_projects_input;   // see TokenMixerPart::projects_input
};
TORCH_MODULE(Block);

// The patch projection E (timm: `patch_embed.proj`): a patch x patch convolution of stride patch,
// read out as tokens, through ops::patch_projection.
struct PatchProjectionImpl : torch::nn::Module {
  PatchProjectionImpl(int64_t in, int64_t width, int64_t patch);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) -> (B, N, D)
  torch::Tensor weight, bias;                     // (D, C, p, p), (D)
};
TORCH_MODULE(PatchProjection);

// Images -> patch tokens (B, N, D): a patch_size conv on the image (vit) or on the ResNet stem's
// feature map (hybrid). timm: `patch_embed.proj`, `patch_embed.backbone`.
struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images);
  ResNetBackbone backbone{nullptr};
  PatchProjection proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class ViTImpl : public ImageClassifierImpl, public DeclaresNoWeightDecay {
 public:
  explicit ViTImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images) override;

  // The stages of forward(), for analysis and self-supervised heads.
  torch::Tensor embed(const torch::Tensor& images);  // (B, N, D): x_p E
  // Prepends the class token and adds the position embedding: (B, N, D) -> z_0 (B, T, D).
  torch::Tensor add_tokens_and_positions(const torch::Tensor& patches);
  Residual encode(const torch::Tensor& tokens);      // z_0 -> z_L
  torch::Tensor pool(const Residual& encoded);       // z_L -> (B, D), normalised
  // y of eq. 4, through the tanh pre-logits layer when the model has one: what the head reads.
  torch::Tensor features(const torch::Tensor& images) override;  // (B, D or representation_size)
  // Masked patch prediction (Sec. 4.6): embed, corrupt, encode, predict from the patch tokens.
  // Needs add_masked_patch_head() first.
  MaskedPatchPrediction forward_masked_patches(const torch::Tensor& images);
  // Registers the [mask] embedding and the prediction head (module "masked_patch").
  void add_masked_patch_head(const MaskedPatchConfig& config);
  // forward() that also returns every attention layer's weights (ops::AttentionRecorder).
  torch::Tensor forward_with_attention(const torch::Tensor& images,
                                       std::vector<torch::Tensor>& attention);

  int64_t num_prefix_tokens() const { return config_.num_prefix_tokens(); }
  std::vector<torch::Tensor> no_weight_decay() const override { return {cls_token}; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token;  // (1, 1, D)
  PositionEmbeddingModule pos;
  torch::nn::ModuleList blocks;
  std::vector<Block> block_list;
  LayerNorm norm{nullptr};     // before pooling
  LayerNorm fc_norm{nullptr};  // after pooling (timm's fc_norm for GAP)
  Linear pre_logits{nullptr};  // tanh representation layer (representation_size)
  Linear head{nullptr};
  MaskedPatchHead masked_patch{nullptr};  // pretraining only (train.objective "masked_patch")

 private:
  const PoolingPart& pooling_;
};

}  // namespace vitlab
