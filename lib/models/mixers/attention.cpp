#include "models/mixers/attention.h"

#include "models/parts.h"

#include "ops/attention.h"

namespace vitlab {

AttentionImpl::AttentionImpl(int64_t width, int64_t heads, bool qkv_bias, double attn_dropout,
                             double dropout, AttentionBiasModule bias)
    : heads(heads), attn_dropout(attn_dropout), dropout(dropout), bias(std::move(bias)) {
  qkv = register_module("qkv", Linear(width, 3 * width, qkv_bias));
  proj = register_module("proj", Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  // q, k, v: three (B, T, H, d) views of the projection, split off its own (B, T, 3, H, d)
  // layout so their gradients go back into it without a permuting copy.
  const auto qkv_parts = ops::qkv_projection(x, qkv->weight, qkv->bias, heads);
  const auto q = qkv_parts[0].transpose(1, 2), k = qkv_parts[1].transpose(1, 2),
             v = qkv_parts[2].transpose(1, 2);  // (B, H, T, d)
  auto out = ops::attention(q, k, v, bias ? bias->forward() : torch::Tensor(),
                            is_training() ? attn_dropout : 0.0);  // (B, H, T, d)
  out = out.transpose(1, 2).reshape({B, T, D});                   // (B, T, D)
  return torch::dropout(proj->forward(out), dropout, is_training());
}


TokenMixerPart attention_mixer() {
  return {"attention", "attn", "multi-head self-attention (the paper's MSA)",
          /*projects_input=*/true, /*mixes_class_token=*/true, /*takes_attention_bias=*/true,
          [](const ModelConfig& c, AttentionBiasModule bias) -> TokenMixerModule {
            return std::make_shared<AttentionImpl>(c.width, c.heads, c.qkv_bias, c.attn_dropout,
                                                   c.dropout, std::move(bias));
          },
          [](const ModelConfig& c, double T) {
            const double D = c.width;  // qkv and output projections, q k^T and the weighted sum
            return 2.0 * T * D * 3 * D + 4.0 * T * T * D + 2.0 * T * D * D;
          },
          nullptr};
}
}  // namespace vitlab
