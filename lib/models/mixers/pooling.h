// PoolFormer's token mixer (Yu et al., "MetaFormer Is Actually What You Need for Vision"): average
// pooling over the patch grid minus the input (the block's residual adds the input back).
#pragma once
#include "models/token_mixer.h"

namespace vitlab {

struct PoolingMixerImpl : TokenMixerImpl {
  PoolingMixerImpl(int64_t grid, int64_t pool_size);
  torch::Tensor forward(const torch::Tensor& x) override;  // (B, grid*grid, D)
  int64_t grid, pool_size;
};

}  // namespace vitlab
