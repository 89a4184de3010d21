// Multi-head self-attention (the paper's MSA, eq. 5-7 of Appendix A), timm's layout and names.
#pragma once
#include "models/layers.h"
#include "models/token_mixer.h"

namespace vitlab {

struct AttentionImpl : TokenMixerImpl {
  // `bias`, when given, is added to the logits (it is registered by its owner, not here).
  AttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attn_dropout, double dropout,
                AttentionBiasModule bias = nullptr);
  torch::Tensor forward(const torch::Tensor& x) override;  // (B, T, D) -> (B, T, D)
  Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
  double attn_dropout, dropout;
  AttentionBiasModule bias;
};
TORCH_MODULE(Attention);

}  // namespace vitlab
