// The paper's relative position embedding (Appendix D.4): nothing is added to the tokens; every
// block's attention gets a RelativePositionBias (models/pos_embed.h) on its logits.
#include "models/layers.h"
#include "models/parts.h"

namespace vitlab {

RelativePositionBiasImpl::RelativePositionBiasImpl(int64_t heads, int64_t tokens) : tokens(tokens) {
  relative_bias = register_parameter("relative_bias", new_parameter({heads, 2 * tokens - 1}));
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
