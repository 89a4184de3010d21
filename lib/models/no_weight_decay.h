// Which parameters weight decay skips is said by the module that owns them (as timm's
// no_weight_decay()), never matched by name from outside. The rule for everything else is
// nanoGPT's: tensors with fewer than two dimensions (biases, norm scales and shifts) are not
// decayed, matrices and convolution filters are.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vitlab {

// Mixed into a module whose own parameters include some that weight decay must skip (position
// embeddings, the class token, relative position biases, the masked-patch token).
struct DeclaresNoWeightDecay {
  virtual ~DeclaresNoWeightDecay() = default;
  virtual std::vector<torch::Tensor> no_weight_decay() const = 0;
};

// Whether weight decay applies to `parameter` of `model`: not for 1-D tensors, nor for any that
// a module under `model` declares.
class WeightDecayRule {
 public:
  explicit WeightDecayRule(const torch::nn::Module& model);
  bool applies(const torch::Tensor& parameter) const;

 private:
  std::vector<const void*> declared_;  // TensorImpls, sorted
};

}  // namespace vitlab
