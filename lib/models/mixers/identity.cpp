// IdentityFormer's token mixer (Yu et al., "MetaFormer Baselines for Vision", 2022): no mixing
// at all. The block is then a per-token MLP with residuals, so what remains of the accuracy
// measures how much the architecture carries without any token mixer.
#include "models/parts.h"

namespace vitlab {
namespace {

struct IdentityMixerImpl : TokenMixerImpl {
  torch::Tensor forward(const torch::Tensor& x) override { return x; }  // (B, N, D)
};

}  // namespace

TokenMixerPart identity_mixer() {
  return {"identity", "identity", "no token mixing (IdentityFormer, MetaFormer baselines)",
          // It returns its input: a bf16 input would round the residual branch.
          /*projects_input=*/false, /*mixes_class_token=*/false, /*takes_attention_bias=*/false,
          [](const ModelConfig&, AttentionBiasModule) -> TokenMixerModule {
            return std::make_shared<IdentityMixerImpl>();
          },
          [](const ModelConfig&, double) { return 0.0; }, nullptr};
}

}  // namespace vitlab
