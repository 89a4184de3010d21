#include "models/module_state.h"

#include <map>

#include "core/error.h"

namespace vitlab {

NamedTensors module_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

void load_module_state(torch::nn::Module& module, const NamedTensors& state, const std::string& source) {
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  std::vector<std::string> missing, mismatched;
  torch::NoGradGuard no_grad;
  auto own = module_state(module);
  for (auto& [name, tensor] : own) {
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
      continue;
    }
    if (!it->second.sizes().equals(tensor.sizes())) {
      mismatched.push_back(fmt::format("{} (file {} vs model {})", name, c10::str(it->second.sizes()),
                                       c10::str(tensor.sizes())));
      continue;
    }
    given.erase(it);
  }
  if (!missing.empty() || !mismatched.empty() || !given.empty()) {
    auto first = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 5) s += fmt::format(", ... ({} in all)", v.size());
      return s.empty() ? std::string("none") : s;
    };
    std::vector<std::string> unexpected;
    for (auto& [k, v] : given) unexpected.push_back(k);
    throw IoError(fmt::format("{}: weights do not fit this model (another model or config?): "
                              "missing: {}; unexpected: {}; shape mismatch: {}",
                              source, first(missing), first(unexpected), first(mismatched)));
  }
  std::map<std::string, torch::Tensor> lookup(state.begin(), state.end());
  for (auto& [name, tensor] : own) tensor.copy_(lookup.at(name));
}

}  // namespace vitlab
