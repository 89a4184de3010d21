// GroupNorm (+ ReLU) on channels-last (NHWC) activations as CUDA kernels (compiled only in the
// CUDA build). Plain C++ on purpose, like fused_norm_kernels.h: ops/group_norm.cpp wraps
// the launchers as an autograd function.
//
// The tensors are viewed as (N, P, C): samples, pixels (H*W) and channels, channels fastest.
// Each sample's pixels are split over `splits` blocks; every block sums its pixels per channel
// into partial sums, and the next kernel reduces the partials of its sample in a fixed order (no
// atomics: results do not depend on scheduling).
#pragma once
#include <cstdint>

#include "ops/cuda/fused_norm_kernels.h"  // ElemType

namespace vitlab::kernels {

// Shapes the kernels handle: eight channels per thread (one 16-byte bf16 load), at most 4096
// channels and 512 groups (the per-channel and per-group sums live in shared memory).
constexpr int kMaxGroupNormChannels = 4096;
constexpr int kMaxGroupNormGroups = 512;
inline bool group_norm_shape_supported(int64_t samples, int64_t channels, int64_t groups) {
  return samples > 0 && samples <= 65535 && channels > 0 && channels % 8 == 0 &&
         channels <= kMaxGroupNormChannels && groups > 0 && groups <= kMaxGroupNormGroups &&
         channels % groups == 0;
}

// The launch shape both passes of a direction share.
struct GroupNormLaunch {
  int threads = 0;  // per block: rows_per_step * (channels / 8)
  int splits = 0;   // blocks per sample
};
GroupNormLaunch group_norm_launch(int64_t samples, int64_t pixels, int64_t channels, int sm_count);

struct GroupNormForwardArgs {
  const void* x = nullptr;  // (N, P, C)
  ElemType x_type = ElemType::kFloat32;
  // A residual branch to add first (same type as x), or null: sum = x + delta, rounded to x's
  // type, is written and normalised.
  const void* delta = nullptr;
  void* sum = nullptr;
  void* out = nullptr;  // (N, P, C): [relu](GN(x [+ delta]) * gamma + beta)
  ElemType out_type = ElemType::kFloat32;
  const float* gamma = nullptr;  // (C)
  const float* beta = nullptr;   // (C)
  float* mean = nullptr;         // (N, G) saved for the backward
  float* rstd = nullptr;         // (N, G) 1 / sqrt(var + eps)
  float* partial = nullptr;      // (2, N, splits, C) scratch
  int64_t samples = 0, pixels = 0;
  int channels = 0, groups = 0;
  float eps = 1e-5f;
  bool relu = false;
};
void group_norm_forward(const GroupNormForwardArgs& args, const GroupNormLaunch& launch,
                        void* cuda_stream);
// The output alone, from the statistics an earlier group_norm_forward of the same x saved in
// args.mean and args.rstd (delta, sum and partial unused): the same bits as that forward's output.
void group_norm_apply(const GroupNormForwardArgs& args, const GroupNormLaunch& launch,
                      void* cuda_stream);

struct GroupNormBackwardArgs {
  const void* grad_out = nullptr;  // (N, P, C) in the forward's out_type
  ElemType grad_out_type = ElemType::kFloat32;
  const void* x = nullptr;  // (N, P, C) what the forward normalised (x, or the sum)
  ElemType x_type = ElemType::kFloat32;
  // The gradient reaching the sum by its other uses (x_type), or null: added to grad_x.
  const void* grad_sum = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;  // for the ReLU mask, recomputed from x
  void* grad_x = nullptr;       // (N, P, C) in x_type
  // (2, N, splits, C): per block sums of grad*xhat (gamma) and grad (beta); the caller sums them
  // over (N, splits) for the parameter gradients.
  float* partial = nullptr;
  int64_t samples = 0, pixels = 0;
  int channels = 0, groups = 0;
  bool relu = false;
};
void group_norm_backward(const GroupNormBackwardArgs& args, const GroupNormLaunch& launch,
                         void* cuda_stream);

}  // namespace vitlab::kernels
