#include "train/weights_init.h"

#include "train/checkpoint.h"

namespace vitlab {

void init_weights_from(ImageClassifierImpl& model, const std::string& path) {
  Checkpoint c = load_checkpoint(path);
  // Transfer: a head of another shape (class count) is replaced by the model's own.
  NamedTensors own = module_state(model);
  std::map<std::string, torch::Tensor> own_by_name(own.begin(), own.end());
  NamedTensors state;
  for (auto& [name, tensor] : c.model) {
    const bool is_head = name.rfind("head.", 0) == 0;
    auto it = own_by_name.find(name);
    if (is_head && it != own_by_name.end() && !it->second.sizes().equals(tensor.sizes())) {
      state.emplace_back(name, it->second.detach().clone());
      continue;
    }
    state.emplace_back(name, tensor);
  }
  load_module_state(model, state, path);
}

}  // namespace vitlab
