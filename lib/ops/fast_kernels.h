// The one switch for vitlab's hand-written CUDA kernels. Models never see it: each op in lib/ops
// (linear, layer_norm, group_norm, max_pool, patch_projection) asks `fast_kernels_for(x)` and
// then checks what its kernel needs of the tensors (device, dtype, autocast, widths), computing
// the same function with ATen where a kernel does not apply. The train step owns the switch
// (TrainStep holds a FastKernels for its lifetime, so its evaluation passes use the kernels too);
// `vitlab eval` and `vitlab bench` open their own.
#pragma once
#include <torch/torch.h>

namespace vitlab::ops {

// Turns the kernels on or off until destroyed, then restores the previous setting. Scopes nest.
// Process-wide, not per thread: autograd runs backward passes on its own threads (the kernels'
// backward is chosen by their forward, so those threads need not read it).
class FastKernels {
 public:
  explicit FastKernels(bool on);
  ~FastKernels();
  FastKernels(const FastKernels&) = delete;
  FastKernels& operator=(const FastKernels&) = delete;

 private:
  bool previous_;
};

bool fast_kernels_enabled();

// The switch is on, `x` is a CUDA tensor and this build has the kernels.
bool fast_kernels_for(const torch::Tensor& x);

}  // namespace vitlab::ops
