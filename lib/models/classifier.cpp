#include "models/classifier.h"

namespace vitlab {

bool ImageClassifierImpl::skip_weight_decay(const std::string& name) const {
  // 1-D parameters are biases and norm scales/shifts; embeddings by name.
  const auto parameters = named_parameters(/*recurse=*/true);
  const auto* p = parameters.find(name);
  if (p && p->dim() <= 1) return true;
  for (const char* key : {"pos_embed", "cls_token", "relative_bias", "mask_token"})
    if (name.find(key) != std::string::npos) return true;
  return false;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace vitlab
