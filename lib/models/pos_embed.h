// Absolute position embeddings added to the token sequence (the paper's E_pos and its
// Appendix D.4 variants). Relative position bias lives with attention (attention.h).
#pragma once
#include <torch/torch.h>

#include "config/model_config.h"

namespace vitlab {

// Fixed 2-D sine-cosine embedding (MoCo v3 / big_vision `posemb_sincos_2d`): (grid*grid, D),
// rows of the grid vary slowest. D must be divisible by 4.
torch::Tensor sincos_2d_table(int64_t grid, int64_t width, double temperature = 10000.0);

struct PositionEmbeddingImpl : torch::nn::Module {
  // `extra_tokens` are prepended tokens (the class token) that the embedding also covers.
  PositionEmbeddingImpl(PosEmbed kind, int64_t grid, int64_t width, int64_t extra_tokens);

  // tokens: (B, extra + N, D) -> same shape with the embedding added (unchanged for none/relative).
  torch::Tensor forward(const torch::Tensor& tokens);
  // The embedding itself, (1, extra + N, D); undefined for none/relative.
  torch::Tensor table();

  PosEmbed kind;
  int64_t grid, width, extra_tokens;
  torch::Tensor pos_embed;    // learned_1d: (1, extra + N, D), as timm names and lays it out
  torch::Tensor row_embed;    // learned_2d: (grid, D/2), indexed by patch row
  torch::Tensor col_embed;    // learned_2d: (grid, D/2), indexed by patch column
  torch::Tensor extra_embed;  // learned_2d: (1, extra, D) for the class token
  torch::Tensor fixed;        // sincos_2d buffer: (1, extra + N, D), zeros for the class token
};
TORCH_MODULE(PositionEmbedding);

}  // namespace vitlab
