// Axial attention: attention along each row of the patch grid, then along each column (Ho et al.
// 2019; the paper's Axial-ViT, Appendix D.6). Separate projections for the two passes.
#pragma once
#include "models/mixers/attention.h"

namespace vitlab {

struct AxialAttentionImpl : TokenMixerImpl {
  AxialAttentionImpl(int64_t width, int64_t heads, int64_t grid, bool qkv_bias,
                     double attn_dropout, double dropout);
  torch::Tensor forward(const torch::Tensor& x) override;  // (B, grid*grid, D)
  Attention row{nullptr}, column{nullptr};
  int64_t grid;
};

}  // namespace vitlab
