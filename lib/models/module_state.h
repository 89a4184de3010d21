// A model's state as named tensors: what checkpoints store and weight files are mapped onto.
// It lives with the models so that the weights layer can read and fill a model's state without
// depending on training.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace vitlab {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The module's parameters and buffers by name (CPU copies not made).
NamedTensors module_state(const torch::nn::Module& module);

// Copies `state` into the module. IoError naming `source` when names or shapes differ: lists
// the first missing, unexpected and mismatched names.
void load_module_state(torch::nn::Module& module, const NamedTensors& state, const std::string& source);

}  // namespace vitlab
