#include "models/mixers/axial.h"

#include "models/parts.h"

namespace vitlab {

AxialAttentionImpl::AxialAttentionImpl(int64_t width, int64_t heads, int64_t grid, bool qkv_bias,
                                       double attn_dropout, double dropout)
    : grid(grid) {
  row = register_module("row", Attention(width, heads, qkv_bias, attn_dropout, dropout));
  column = register_module("column", Attention(width, heads, qkv_bias, attn_dropout, dropout));
}

torch::Tensor AxialAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), D = x.size(2);
  auto rows = x.reshape({B * grid, grid, D});  // (B*rows, cols, D): attend within a row
  auto y = row->forward(rows).reshape({B, grid, grid, D});
  auto cols = y.transpose(1, 2).reshape({B * grid, grid, D});  // (B*cols, rows, D)
  auto z = column->forward(cols).reshape({B, grid, grid, D}).transpose(1, 2);
  return z.reshape({B, grid * grid, D});  // (B, N, D)
}


TokenMixerPart axial_mixer() {
  return {"axial", "axial", "attention along rows, then columns (Axial-ViT)",
          /*projects_input=*/true, /*mixes_class_token=*/false, /*takes_attention_bias=*/false,
          [](const ModelConfig& c, AttentionBiasModule) -> TokenMixerModule {
            return std::make_shared<AxialAttentionImpl>(c.width, c.heads, c.grid_size(),
                                                        c.qkv_bias, c.attn_dropout, c.dropout);
          },
          [](const ModelConfig& c, double N) {
            const double D = c.width, grid = c.grid_size();  // two passes over length-grid rows
            return 2 * (2.0 * N * D * 3 * D + 4.0 * N * grid * D + 2.0 * N * D * D);
          },
          nullptr};
}
}  // namespace vitlab
