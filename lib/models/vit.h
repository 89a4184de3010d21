// Vision Transformer (Dosovitskiy et al. 2021), the paper's equations 1-4:
//   z0 = [x_class; x_p E] + E_pos;  z'_l = MSA(LN(z_{l-1})) + z_{l-1};
//   z_l = MLP(LN(z'_l)) + z'_l;      y = LN(z_L^0)
// with the ablation knobs as data (ModelConfig): position embedding, pooling, token mixer,
// hybrid ResNet stem. Parameter names follow timm's VisionTransformer.
#pragma once
#include <torch/torch.h>

#include "models/attention.h"
#include "models/classifier.h"
#include "models/layers.h"
#include "models/pos_embed.h"
#include "models/resnetv2.h"

namespace vitlab {

// Pre-LN transformer block with a configurable token mixer.
struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& c, double drop_path_rate);
  // `weights`, when not null, receives the attention weights (B, heads, T, T) (attention mixer).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights = nullptr);
  // The same block for the fused-kernel path: the stream arrives as x + pending (pending: the
  // previous block's MLP branch, or undefined) and leaves as (y, m) meaning y + m, so every
  // residual add happens inside the following LayerNorm's kernel (models/fused_norm.h).
  std::pair<torch::Tensor, torch::Tensor> forward_fused(const torch::Tensor& x,
                                                        const torch::Tensor& pending,
                                                        torch::Tensor* weights = nullptr);
  // The fast path's linear layers (models/fast_linear.h) in the mixer and the MLP.
  void use_fast_linears(bool on);

  TokenMixer mixer;
  double drop_path_rate;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  RelativePositionBias relative{nullptr};
  AxialAttention axial{nullptr};
  PoolingMixer pooling{nullptr};
  Mlp mlp{nullptr};

 private:
  torch::Tensor mix(const torch::Tensor& normed, torch::Tensor* weights);  // the token mixer
};
TORCH_MODULE(Block);

// Images -> patch tokens (B, N, D): a patch_size conv on the image (vit) or on the ResNet stem's
// feature map (hybrid). timm: `patch_embed.proj`, `patch_embed.backbone`.
struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images);
  // The same projection as one matmul over the flattened patches (no hybrid backbone): a
  // stride = kernel convolution is a GEMM, and cuDNN's path for it converts layouts on every
  // call (3% of ViT-B/16's step on an H100). Used by the fast path.
  torch::Tensor forward_as_matmul(const torch::Tensor& images);
  ResNetBackbone backbone{nullptr};
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class ViTImpl : public ImageClassifierImpl {
 public:
  explicit ViTImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images) override;

  // The stages of forward(), exposed for analysis and self-supervised heads.
  torch::Tensor embed(const torch::Tensor& images);  // (B, N, D) patch embeddings
  // Prepends the class token and adds position embeddings: (B, N, D) -> (B, T, D).
  torch::Tensor add_tokens_and_positions(const torch::Tensor& patches);
  // Runs the blocks; fills `attention` with one (B, heads, T, T) tensor per block when given.
  torch::Tensor encode(const torch::Tensor& tokens,
                       std::vector<torch::Tensor>* attention = nullptr);
  torch::Tensor pool(const torch::Tensor& encoded);        // (B, T, D) -> (B, D), normalised
  torch::Tensor head_logits(const torch::Tensor& pooled);  // pre-logits + head
  // forward() that also returns every block's attention weights (explicit attention path).
  torch::Tensor forward_with_attention(const torch::Tensor& images,
                                       std::vector<torch::Tensor>& attention);

  int64_t num_prefix_tokens() const { return config_.class_token ? 1 : 0; }
  // Fused residual-add + LayerNorm kernels in encode() (CUDA fast path); same function.
  void use_fused_kernels(bool on) override;
  bool uses_fused_kernels() const override { return fused_kernels_; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token;  // (1, 1, D)
  PositionEmbedding pos{nullptr};
  torch::nn::ModuleList blocks;
  std::vector<Block> block_list;
  torch::nn::LayerNorm norm{nullptr};     // cls / before_pool GAP
  torch::nn::LayerNorm fc_norm{nullptr};  // after_pool GAP (timm's fc_norm)
  torch::nn::Linear pre_logits{nullptr};  // tanh representation layer (representation_size)
  torch::nn::Linear head{nullptr};

 private:
  std::vector<torch::Tensor> block_linear_parameters();  // the blocks' linear weights, biases
  bool fused_kernels_ = false;
};

}  // namespace vitlab
