// Tensors on their way from a weights file into a model: each keeps the name it had in the file
// (`origin`) so that every error can name the file's tensor, not only vitlab's.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/module_state.h"

namespace vitlab {

struct SourcedTensor {
  std::string name;    // current name (timm's, then vitlab's)
  torch::Tensor tensor;
  std::string origin;  // the name(s) in the file it came from
};
using SourcedTensors = std::vector<SourcedTensor>;

inline SourcedTensors sourced(const NamedTensors& tensors) {
  SourcedTensors out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) out.push_back({name, tensor, name});
  return out;
}

inline std::string shape_str(const torch::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace vitlab
