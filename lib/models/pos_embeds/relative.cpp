// The paper's relative position embedding (Appendix D.4): nothing is added to the tokens; every
// block's attention gets a RelativePositionBias (models/pos_embed.h) on its logits.
#include "models/layers.h"
#include "models/parts.h"

namespace vitlab {

RelativePositionBiasImpl::RelativePositionBiasImpl(int64_t heads, int64_t tokens) : tokens(tokens) {
  relative_bias = register_parameter("relative_bias", new_parameter({heads, 2 * tokens - 1}));
  trunc_normal_(relative_bias, 0.02);
  // The offset of every pair, as a buffer: the state keeps the layout that checkpoints and
  // exported files carry, and tests check forward() against this gather.
  auto positions = torch::arange(tokens, torch::kLong);
  index = register_buffer(
      "index", positions.unsqueeze(1) - positions.unsqueeze(0) + (tokens - 1));  // (T, T)
}

torch::Tensor RelativePositionBiasImpl::forward() {
  // bias[h, i, j] = relative_bias[h, i - j + T - 1]. Row i is the window relative_bias[h, i : i + T]
  // read backwards, so the table is built from T sliding windows rather than gathered by an index:
  // an index gather's CUDA backward adds into the table with atomics, whose order varies, and made
  // the relative runs of experiments/pos_embed.json differ from run to run on the GPU (README
  // Findings). unfold's backward sums each table entry's windows in a fixed order.
  const int64_t T = tokens;
  return relative_bias.flip(-1)  // (heads, 2T-1); entry k holds offset T - 1 - k
      .unfold(-1, T, 1)          // (heads, T, T); window w, column j holds offset T - 1 - w - j
      .flip(1)                   // (heads, T, T); row i = window T - 1 - i: offset i - j
      .unsqueeze(0);             // (1, heads, T, T)
}

PositionEmbeddingPart relative_embedding() {
  return {"relative", "a learned per-head bias on the attention logits for every 1-D offset",
          [](const ModelConfig&) -> PositionEmbeddingModule {
            return std::make_shared<PositionEmbeddingImpl>();
          },
          [](const ModelConfig& c) -> AttentionBiasModule {
            return std::make_shared<RelativePositionBiasImpl>(
                c.heads, c.num_patches() + c.num_prefix_tokens());
          },
          nullptr};
}

}  // namespace vitlab
