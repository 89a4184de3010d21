// Position embeddings (the paper's E_pos, eq. 1, and the Appendix D.4 variants). Each kind is a
// part registered in models/parts.cpp: a module the ViT registers as "pos", which adds its table
// to the tokens, and optionally a per-block bias on the attention logits (the relative kind).
// Every parameter of a position embedding is exempt from weight decay.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "config/model_config.h"
#include "models/no_weight_decay.h"
#include "models/token_mixer.h"

namespace vitlab {

struct PositionEmbeddingImpl : torch::nn::Module, DeclaresNoWeightDecay {
  // tokens: (B, prefix + N, D) -> the same with the embedding added.
  virtual torch::Tensor forward(const torch::Tensor& tokens);
  // The embedding added to the tokens, (1, prefix + N, D); undefined when none is added.
  virtual torch::Tensor table() { return {}; }
  std::vector<torch::Tensor> no_weight_decay() const override { return parameters(); }
};
using PositionEmbeddingModule = std::shared_ptr<PositionEmbeddingImpl>;

// Fixed 2-D sine-cosine embedding (MoCo v3 / big_vision `posemb_sincos_2d`): (grid*grid, D),
// rows of the grid vary slowest. D must be divisible by 4.
torch::Tensor sincos_2d_table(int64_t grid, int64_t width, double temperature = 10000.0);

// The relative kind's per-block bias: one learned value per head for each 1-D offset i - j
// between sequence positions, added to the attention logits (Appendix D.4). Pairs with the same
// offset share the bias.
struct RelativePositionBiasImpl : AttentionBiasImpl, DeclaresNoWeightDecay {
  RelativePositionBiasImpl(int64_t heads, int64_t tokens);
  torch::Tensor forward() override;  // (1, heads, T, T)
  std::vector<torch::Tensor> no_weight_decay() const override { return {relative_bias}; }
  torch::Tensor relative_bias;  // (heads, 2T - 1); index T - 1 is offset 0
  torch::Tensor index;          // (T, T) buffer: i - j + T - 1
  int64_t tokens;
};

}  // namespace vitlab
