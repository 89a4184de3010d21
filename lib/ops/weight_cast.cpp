#include "ops/weight_cast.h"

#include <stdexcept>

#if VITLAB_WITH_CUDA
#include "ops/cuda/cast_kernels.h"
#include "ops/kernel_tensors.h"
#endif

namespace vitlab::ops {
namespace {
thread_local Bf16CastScope* current_scope = nullptr;
}  // namespace

Bf16CastScope::Bf16CastScope(const std::vector<torch::Tensor>& tensors) {
  if (current_scope) throw std::logic_error("Bf16CastScope: scopes do not nest");
#if VITLAB_WITH_CUDA
  kernels::CastBatch batch;
  const auto flush = [&] {
    kernels::cast_to_bf16(batch, kernels::current_stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    batch.count = 0;
  };
  for (const auto& t : tensors) {
    if (!t.defined() || !t.is_cuda() || t.scalar_type() != torch::kFloat || !t.is_contiguous() ||
        copies_.count(t.unsafeGetTensorImpl()))
      continue;
    auto copy = torch::empty(t.sizes(), t.options().dtype(torch::kBFloat16));
    auto& segment = batch.segments[batch.count++];
    segment.src = t.data_ptr<float>();
    segment.dst = copy.data_ptr();
    segment.n = t.numel();
    copies_.emplace(t.unsafeGetTensorImpl(), std::move(copy));
    if (batch.count == kernels::kMaxCastSegments) flush();
  }
  flush();
#else
  (void)tensors;
#endif
  current_scope = this;
}

Bf16CastScope::~Bf16CastScope() {
  current_scope = nullptr;
}

torch::Tensor bf16_copy(const torch::Tensor& t) {
  if (current_scope) {
    const auto found = current_scope->copies_.find(t.unsafeGetTensorImpl());
    if (found != current_scope->copies_.end()) return found->second;
  }
  return t.to(torch::kBFloat16);
}

}  // namespace vitlab::ops
