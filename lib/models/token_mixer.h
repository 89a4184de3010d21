// A token mixer: the part of a transformer block that moves information between tokens (the
// paper's MSA in eq. 2; MetaFormer's "token mixer"). Mixers are registered in models/parts.cpp,
// and the block builds whichever the config names; it never knows which one it holds.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "config/model_config.h"

namespace vitlab {

struct TokenMixerImpl : torch::nn::Module {
  // Normalised tokens (B, T, D) -> the block's mixing branch (B, T, D).
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};
using TokenMixerModule = std::shared_ptr<TokenMixerImpl>;

// A learned bias added to every attention logit of one block, (1, heads, T, T): how a position
// embedding that is not added to the tokens (the paper's relative kind) reaches attention.
struct AttentionBiasImpl : torch::nn::Module {
  virtual torch::Tensor forward() = 0;
};
using AttentionBiasModule = std::shared_ptr<AttentionBiasImpl>;

}  // namespace vitlab
