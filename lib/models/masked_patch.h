// Masked patch prediction, the paper's self-supervision (Sec. 4.6, Appendix B.1.2), after BERT:
// corrupt 50% of the patch embeddings between the patch projection and the position embedding
// (80% of them become a learned [mask] embedding, 10% another random patch's embedding from the
// batch, 10% stay as they are), run the encoder, and predict from each corrupted patch's output
// token what the patch looked like: its 3-bit mean colour (2^(3C) classes), or, the alternatives
// the paper tried, its pixels downsized to 4x4 or all of them (L2 regression).
//
// The hybrid's "patches" are cells of the ResNet stem's feature map; a cell's target is the image
// region it covers (image_size / grid pixels per side).
#pragma once
#include <torch/torch.h>

#include "config/model_config.h"
#include "config/train_config.h"
#include "models/layers.h"
#include "models/no_weight_decay.h"

namespace vitlab {

struct CorruptedPatches {
  torch::Tensor patches;    // (B, N, D): the input with the corrupted embeddings replaced
  torch::Tensor corrupted;  // (B, N) bool: the chosen patches (also those left unchanged)
};

struct MaskedPatchPrediction {
  torch::Tensor predictions;  // (B, N, outputs): logits over colour classes, or values
  torch::Tensor corrupted;    // (B, N) bool: the patches the loss is taken over
};

// What the head predicts per patch, and how the targets are made from the images.
struct MaskedPatchGeometry {
  int64_t grid = 0;     // tokens per side
  int64_t region = 0;   // image pixels per token side
  int64_t channels = 0;
  MaskedPatchTarget target = MaskedPatchTarget::kMeanColor;
  int64_t outputs() const;  // classes (mean colour) or values (regression) per patch
};
MaskedPatchGeometry masked_patch_geometry(const ModelConfig& model, const MaskedPatchConfig& config);

// The targets of every patch, (B, N) int64 colour classes or (B, N, F) float values, from images
// normalised as the model sees them and the normalisation's per-channel mean and std.
torch::Tensor masked_patch_targets(const torch::Tensor& images, const MaskedPatchGeometry& g,
                                   const torch::Tensor& mean, const torch::Tensor& std);

// The [mask] embedding, the corruption, and the prediction head (LayerNorm, then a linear map to
// the targets), owned by the ViT it pretrains (registered as "masked_patch").
class MaskedPatchHeadImpl : public torch::nn::Module, public DeclaresNoWeightDecay {
 public:
  MaskedPatchHeadImpl(const ModelConfig& model, const MaskedPatchConfig& config);
  // Draws the corruption on the patches' device (a captured step replays fresh draws).
  CorruptedPatches corrupt(const torch::Tensor& patches);  // (B, N, D)
  torch::Tensor forward(const torch::Tensor& tokens);      // (B, N, D) -> (B, N, outputs)
  std::vector<torch::Tensor> no_weight_decay() const override { return {mask_token}; }

  const MaskedPatchConfig config;
  const MaskedPatchGeometry geometry;
  torch::Tensor mask_token;  // (D): BERT's [mask]
  LayerNorm norm{nullptr};
  Linear proj{nullptr};
};
TORCH_MODULE(MaskedPatchHead);

}  // namespace vitlab
