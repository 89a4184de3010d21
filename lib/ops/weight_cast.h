// bfloat16 copies of float32 weights for one forward pass on the CUDA fast path, made by one
// multi-tensor kernel (ops/cuda/cast_kernels.h) instead of a cast per weight and per bias
// (~100 small kernels in a ViT-B/16 step). While a Bf16CastScope exists, bf16_copy(w) returns
// the copy made for w; any other tensor, or any call outside a scope, is cast as usual. The
// copies are bit-identical to Tensor::to(bfloat16). Without CUDA the scope makes no copies.
#pragma once
#include <torch/torch.h>

#include <unordered_map>
#include <vector>

namespace vitlab::ops {

class Bf16CastScope {
 public:
  // `tensors`: float32 CUDA tensors (others are skipped and cast on demand). Scopes do not nest:
  // an inner scope is an error.
  explicit Bf16CastScope(const std::vector<torch::Tensor>& tensors);
  ~Bf16CastScope();
  Bf16CastScope(const Bf16CastScope&) = delete;
  Bf16CastScope& operator=(const Bf16CastScope&) = delete;

  size_t size() const { return copies_.size(); }

 private:
  friend torch::Tensor bf16_copy(const torch::Tensor& t);
  std::unordered_map<const void*, torch::Tensor> copies_;  // keyed by the TensorImpl
};

// t in bfloat16: the scope's copy where there is one, t.to(bfloat16) otherwise.
torch::Tensor bf16_copy(const torch::Tensor& t);

}  // namespace vitlab::ops
