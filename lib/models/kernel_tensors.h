// What the hand-written CUDA kernels (models/cuda/) need of a tensor before they take its raw
// pointer, and the stream they run on. Included only by the CUDA build's .cpp wrappers.
#pragma once
#include <torch/torch.h>

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

namespace vitlab::kernels {

// Contiguous and 16-byte aligned: the kernels load 16 bytes at a time.
inline torch::Tensor kernel_ready(const torch::Tensor& t) {
  auto c = t.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

inline void* current_stream() {
  return at::cuda::getCurrentCUDAStream().stream();
}
inline int sm_count() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

}  // namespace vitlab::kernels
#endif
