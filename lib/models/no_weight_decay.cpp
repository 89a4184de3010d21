#include "models/no_weight_decay.h"

#include <algorithm>

namespace vitlab {

WeightDecayRule::WeightDecayRule(const torch::nn::Module& model) {
  for (const auto& module : model.modules(/*include_self=*/true))
    if (const auto* declares = dynamic_cast<const DeclaresNoWeightDecay*>(module.get()))
      for (const auto& t : declares->no_weight_decay())
        if (t.defined()) declared_.push_back(t.unsafeGetTensorImpl());
  std::sort(declared_.begin(), declared_.end());
}

bool WeightDecayRule::applies(const torch::Tensor& parameter) const {
  if (parameter.dim() < 2) return false;
  return !std::binary_search(declared_.begin(), declared_.end(),
                             static_cast<const void*>(parameter.unsafeGetTensorImpl()));
}

}  // namespace vitlab
