// What the hand-written CUDA kernels (ops/cuda/) need of a tensor before they take its raw
// pointer, and the stream they run on. Included only by the CUDA build's .cpp wrappers.
#pragma once
#include <torch/torch.h>

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "ops/cuda/fused_norm_kernels.h"  // ElemType

namespace vitlab::kernels {

// The kernels' element type for a float32 or bfloat16 tensor.
inline ElemType elem_type(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? ElemType::kBFloat16 : ElemType::kFloat32;
}

// Contiguous and 16-byte aligned: the kernels load 16 bytes at a time.
inline torch::Tensor kernel_ready(const torch::Tensor& t) {
  auto c = t.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

// Channels-last (N, H, W, C in memory) and 16-byte aligned: the channels-last kernels view a
// (N, C, H, W) tensor as (N, H*W, C).
inline torch::Tensor channels_last_ready(const torch::Tensor& t) {
  auto c = t.contiguous(at::MemoryFormat::ChannelsLast);
  if (reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0) return c;
  return torch::empty_like(c, c.options().memory_format(at::MemoryFormat::ChannelsLast)).copy_(c);
}

inline void* current_stream() {
  return at::cuda::getCurrentCUDAStream().stream();
}
inline int sm_count() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

}  // namespace vitlab::kernels
#endif
