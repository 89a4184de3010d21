// LayerNorm and residual-add + LayerNorm as single CUDA kernels (compiled only in the CUDA build).
// Plain C++ on purpose: the launchers take raw pointers, so this header and the .cu file need
// neither LibTorch nor CUDA headers on the C++ side. ops/layer_norm.cpp wraps them as autograd
// functions.
#pragma once
#include <cstdint>

namespace vitlab::kernels {

enum class ElemType { kFloat32, kBFloat16 };

// Widths the kernels handle: one warp per row, four floats per lane and step, at most 8 steps.
constexpr int kMaxNormWidth = 1024;
inline bool norm_width_supported(int64_t width) {
  return width > 0 && width % 4 == 0 && width <= kMaxNormWidth;
}

struct NormForwardArgs {
  const float* x = nullptr;     // (rows, width) the residual stream, float32
  const void* delta = nullptr;  // (rows, width) a residual branch to add first, or null
  ElemType delta_type = ElemType::kFloat32;
  float* sum = nullptr;  // x + delta (written when delta is set)
  void* out = nullptr;   // LN(x [+ delta]) * gamma + beta
  ElemType out_type = ElemType::kFloat32;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float* mean = nullptr;  // (rows) saved for the backward
  float* rstd = nullptr;  // (rows) 1 / sqrt(var + eps)
  int64_t rows = 0;
  int width = 0;
  float eps = 1e-6f;
};
void norm_forward(const NormForwardArgs& args, void* cuda_stream);

struct NormBackwardArgs {
  const void* grad_out = nullptr;  // (rows, width) in the forward's out_type
  ElemType grad_out_type = ElemType::kFloat32;
  const float* grad_sum = nullptr;  // gradient reaching the sum through the stream, or null
  const float* input = nullptr;     // what was normalised (the sum, or x)
  // (rows, width) bfloat16 or null: what was normalised is input + input_delta, added again here
  // exactly as the forward added it (so the sum need not be kept between forward and backward).
  const void* input_delta = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  const float* gamma = nullptr;
  float* grad_input = nullptr;     // grad_sum + LN backward, float32
  void* grad_delta = nullptr;      // the same rounded to bfloat16 for a bf16 delta, or null
  float* partial_gamma = nullptr;  // (blocks, width) per-block sums, reduced by the caller
  float* partial_beta = nullptr;
  // (blocks, width) or null: per-block column sums of grad_delta as written (bf16), the bias
  // gradient of the linear layer that produced delta (see fast_linear.h, BiasGradSlot).
  float* partial_delta = nullptr;
  int64_t rows = 0;
  int width = 0;
};
// Blocks the backward launches (the first dimension of the partial sums).
int norm_backward_blocks(int64_t rows, int sm_count);
// Shared memory per block of the backward: gamma and two (kWarps, width) sums, three when it also
// sums grad_delta (partial_delta).
int norm_backward_shared_bytes(int width, bool sum_delta);
// Whether a device with `shared_per_block` bytes of opt-in shared memory per block can run the
// backward at this width (every width up to kMaxNormWidth on sm_80 and later; not the widest on
// 64 KiB parts).
bool norm_backward_fits(int width, int shared_per_block);
// Whether such a device, with `shared_per_sm` per multiprocessor, can also sum grad_delta at this
// width without losing blocks per SM.
bool norm_backward_can_sum_delta(int width, int shared_per_block, int shared_per_sm);
void norm_backward(const NormBackwardArgs& args, int blocks, void* cuda_stream);

}  // namespace vitlab::kernels
