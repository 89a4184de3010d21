// Pooling heads: how the encoded tokens become one vector per image before the classifier.
#include "models/parts.h"

namespace vitlab {

PoolingPart class_token_pooling() {
  return {"cls", "the class token's output (the paper's y = LN(z_L^0))",
          /*needs_class_token=*/true, /*norm_after_pool=*/false,
          [](const torch::Tensor& tokens, int64_t) { return tokens.select(1, 0); }};
}

PoolingPart average_pooling() {
  return {"gap", "global average pooling over the patch tokens (the paper's Appendix D.3)",
          /*needs_class_token=*/false, /*norm_after_pool=*/true,
          [](const torch::Tensor& tokens, int64_t prefix) {
            return tokens.narrow(1, prefix, tokens.size(1) - prefix).mean(1);  // (B, D)
          }};
}

}  // namespace vitlab
