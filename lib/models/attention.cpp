#include "models/attention.h"

#include "core/compat.h"
#include "models/fast_linear.h"
#include "models/layers.h"

namespace vitlab {

RelativePositionBiasImpl::RelativePositionBiasImpl(int64_t heads, int64_t tokens) : tokens(tokens) {
  relative_bias = register_parameter("relative_bias", torch::zeros({heads, 2 * tokens - 1}));
  trunc_normal_(relative_bias, 0.02);
  auto positions = torch::arange(tokens, torch::kLong);
  index = register_buffer(
      "index", positions.unsqueeze(1) - positions.unsqueeze(0) + (tokens - 1));  // (T, T)
}

torch::Tensor RelativePositionBiasImpl::forward() {
  // (heads, 2T-1) gathered by (T*T) offsets -> (heads, T, T) -> (1, heads, T, T)
  return relative_bias.index_select(1, index.reshape({-1}))
      .reshape({relative_bias.size(0), tokens, tokens})
      .unsqueeze(0);
}

AttentionImpl::AttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attn_dropout,
                             double dropout)
    : heads(heads), attn_dropout(attn_dropout), dropout(dropout) {
  qkv = register_module(
      "qkv", torch::nn::Linear(torch::nn::LinearOptions(width, 3 * width).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias,
                                     torch::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  // (B, T, 3D) -> (B, T, 3, H, d) -> three (B, T, H, d) -> (B, H, T, d) views. The 3 is split
  // off the linear's own layout, so the three gradients go back into it without a permuting copy;
  // on the fast path they are not even stacked (see qkv_projection).
  const auto qkv_parts = qkv_projection(x, qkv, heads, fast_linears);
  const auto q = qkv_parts[0].transpose(1, 2), k = qkv_parts[1].transpose(1, 2),
             v = qkv_parts[2].transpose(1, 2);
  const double p = is_training() ? attn_dropout : 0.0;
  torch::Tensor out;  // (B, H, T, d)
  if (weights) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(D / heads));
    auto logits = torch::matmul(q * scale, k.transpose(-2, -1));  // (B, H, T, T)
    if (bias.defined()) logits = logits + bias;
    // Softmax in fp32: bf16 logits lose the small differences that matter (see notes on NaNs).
    auto w = torch::softmax(logits.to(torch::kFloat), -1).to(q.scalar_type());
    *weights = w;
    out = torch::matmul(torch::dropout(w, p, is_training()), v);
  } else {
    out = compat::scaled_dot_product_attention(q, k, v, bias, p);
  }
  out = out.transpose(1, 2).reshape({B, T, D});  // (B, T, D)
  return torch::dropout(linear_act(out, proj, Activation::kNone, fast_linears), dropout,
                        is_training());
}

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

PoolingMixerImpl::PoolingMixerImpl(int64_t grid, int64_t pool_size)
    : grid(grid), pool_size(pool_size) {}

torch::Tensor PoolingMixerImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), D = x.size(2);
  auto image = x.transpose(1, 2).reshape({B, D, grid, grid});  // (B, D, H, W)
  auto pooled = torch::avg_pool2d(image, pool_size, 1, pool_size / 2, /*ceil_mode=*/false,
                                  /*count_include_pad=*/false);
  return (pooled - image).reshape({B, D, grid * grid}).transpose(1, 2);  // (B, N, D)
}

}  // namespace vitlab
