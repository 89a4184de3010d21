// Token mixers: multi-head self-attention (optionally with the paper's 1-D relative position
// bias), axial attention and the PoolFormer pooling mixer.
#pragma once
#include <torch/torch.h>

namespace vitlab {

// The paper's relative position embedding (Appendix D.4): one learned bias per head for each
// 1-D offset i - j between sequence positions, added to the attention logits. Pairs with the
// same offset share the bias.
struct RelativePositionBiasImpl : torch::nn::Module {
  RelativePositionBiasImpl(int64_t heads, int64_t tokens);
  torch::Tensor forward();      // (1, heads, T, T)
  torch::Tensor relative_bias;  // (heads, 2T - 1); index T - 1 is offset 0
  torch::Tensor index;          // (T, T) buffer: i - j + T - 1
  int64_t tokens;
};
TORCH_MODULE(RelativePositionBias);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attn_dropout, double dropout);
  // x: (B, T, D). `bias` broadcasts to (B, heads, T, T) or is undefined. When `weights` is not
  // null, the explicit path runs and the softmax weights (B, heads, T, T) are stored there (for
  // attention maps and rollout); otherwise the fused kernel runs where LibTorch has it.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias = {},
                        torch::Tensor* weights = nullptr);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
  double attn_dropout, dropout;
  bool fast_linears = false;  // the CUDA fast path's linear backward (models/fast_linear.h)
};
TORCH_MODULE(Attention);

// Axial attention: attention along each row of the patch grid, then along each column
// (Ho et al. 2019; the ViT paper's Axial-ViT). Separate projections for the two passes.
struct AxialAttentionImpl : torch::nn::Module {
  AxialAttentionImpl(int64_t width, int64_t heads, int64_t grid, bool qkv_bias, double attn_dropout,
                     double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, grid*grid, D)
  Attention row{nullptr}, column{nullptr};
  int64_t grid;
};
TORCH_MODULE(AxialAttention);

// PoolFormer's token mixer: average pooling over the patch grid minus the input (the block's
// residual adds the input back). No parameters.
struct PoolingMixerImpl : torch::nn::Module {
  PoolingMixerImpl(int64_t grid, int64_t pool_size);
  torch::Tensor forward(const torch::Tensor& x);  // (B, grid*grid, D)
  int64_t grid, pool_size;
};
TORCH_MODULE(PoolingMixer);

}  // namespace vitlab
