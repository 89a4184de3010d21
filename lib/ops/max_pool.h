// Max-pooling over an input padded with a constant, for the ResNet stems: TF "SAME" padding with
// -inf (vit_jax's hybrid) or timm's BiT stem (one zero on every side, then a 3x3/2 max-pool).
// On the CUDA fast path (ops/fast_kernels.h), with channels-last input, CUDA kernels pad virtually and keep a one-byte
// argmax (ops/cuda/max_pool_kernels.h); elsewhere ATen pads and pools. The same function.
#pragma once
#include <torch/torch.h>

#include <array>

namespace vitlab::ops {

// Padding of (left, right, top, bottom), as torch::constant_pad_nd takes it.
using Padding2d = std::array<int64_t, 4>;

// True when the CUDA kernels would run for this input and window (the switch included).
bool max_pool_kernels_apply(const torch::Tensor& x, int64_t kernel, const Padding2d& padding);

// max_pool2d(constant_pad_nd(x, padding, pad_value), kernel, stride).
torch::Tensor padded_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride,
                              const Padding2d& padding, double pad_value);

}  // namespace vitlab::ops
