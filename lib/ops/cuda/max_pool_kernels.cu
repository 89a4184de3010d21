// One thread per eight channels of one output (forward) or one input (backward) pixel. The
// forward scans the window row by row and keeps the first maximum (ATen's order: a later value
// wins only if greater, or NaN); the backward adds, in a fixed order, the gradient of every window
// covering the pixel whose argmax is the pixel: deterministic, no atomics.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "ops/cuda/max_pool_kernels.h"
#include "ops/cuda/vec8.cuh"

namespace vitlab::kernels {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) max_pool_forward_kernel(MaxPoolForwardArgs a) {
  const MaxPoolShape& s = a.shape;
  const int vectors = s.channels / 8;
  const int64_t total = s.samples * s.out_height * s.out_width * vectors;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int c = static_cast<int>(i % vectors) * 8;
  int64_t pixel = i / vectors;  // (n, oh, ow)
  const int ow = static_cast<int>(pixel % s.out_width);
  pixel /= s.out_width;
  const int oh = static_cast<int>(pixel % s.out_height);
  const int64_t n = pixel / s.out_height;
  const T* x = static_cast<const T*>(a.x) + n * s.height * s.width * s.channels + c;
  float best[8];
  uint8_t where[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) best[k] = -INFINITY, where[k] = 0;
  for (int dy = 0; dy < s.kernel; ++dy) {
    const int ih = oh * s.stride - s.pad_top + dy;
    for (int dx = 0; dx < s.kernel; ++dx) {
      const int iw = ow * s.stride - s.pad_left + dx;
      Vec8 v;
      if (ih >= 0 && ih < s.height && iw >= 0 && iw < s.width) {
        v = load8(x + (static_cast<int64_t>(ih) * s.width + iw) * s.channels);
      } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) v.v[k] = a.pad_value;
      }
      const uint8_t position = static_cast<uint8_t>(dy * s.kernel + dx);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        if (v.v[k] > best[k] || isnan(v.v[k])) best[k] = v.v[k], where[k] = position;
      }
    }
  }
  const int64_t out_offset = i * 8;  // (n, oh, ow, c) flattened
  Vec8 out;
#pragma unroll
  for (int k = 0; k < 8; ++k) out.v[k] = best[k];
  store8(static_cast<T*>(a.out) + out_offset, out);
  uint2 packed;
  packed.x = where[0] | where[1] << 8 | where[2] << 16 | static_cast<uint32_t>(where[3]) << 24;
  packed.y = where[4] | where[5] << 8 | where[6] << 16 | static_cast<uint32_t>(where[7]) << 24;
  *reinterpret_cast<uint2*>(a.argmax + out_offset) = packed;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) max_pool_backward_kernel(MaxPoolBackwardArgs a) {
  const MaxPoolShape& s = a.shape;
  const int vectors = s.channels / 8;
  const int64_t total = s.samples * s.height * s.width * vectors;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int c = static_cast<int>(i % vectors) * 8;
  int64_t pixel = i / vectors;  // (n, ih, iw)
  const int iw = static_cast<int>(pixel % s.width);
  pixel /= s.width;
  const int ih = static_cast<int>(pixel % s.height);
  const int64_t n = pixel / s.height;
  // Windows covering (ih, iw): oh * stride - pad_top <= ih <= oh * stride - pad_top + kernel - 1.
  const int first_h = ih + s.pad_top - s.kernel + 1, first_w = iw + s.pad_left - s.kernel + 1;
  const int oh_begin = first_h <= 0 ? 0 : (first_h + s.stride - 1) / s.stride;
  const int ow_begin = first_w <= 0 ? 0 : (first_w + s.stride - 1) / s.stride;
  const int oh_end = min(s.out_height - 1, (ih + s.pad_top) / s.stride);
  const int ow_end = min(s.out_width - 1, (iw + s.pad_left) / s.stride);
  const int64_t sample = n * s.out_height * s.out_width;
  float sum[8] = {};
  for (int oh = oh_begin; oh <= oh_end; ++oh) {
    for (int ow = ow_begin; ow <= ow_end; ++ow) {
      const int position =
          (ih - (oh * s.stride - s.pad_top)) * s.kernel + (iw - (ow * s.stride - s.pad_left));
      const int64_t offset =
          ((sample + static_cast<int64_t>(oh) * s.out_width + ow)) * s.channels + c;
      const uint2 packed = *reinterpret_cast<const uint2*>(a.argmax + offset);
      const Vec8 g = load8(static_cast<const T*>(a.grad_out) + offset);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const uint32_t word = k < 4 ? packed.x : packed.y;
        if (static_cast<int>((word >> (8 * (k % 4))) & 0xffu) == position) sum[k] += g.v[k];
      }
    }
  }
  Vec8 out;
#pragma unroll
  for (int k = 0; k < 8; ++k) out.v[k] = sum[k];
  store8(static_cast<T*>(a.grad_x) + i * 8, out);
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

void max_pool_forward(const MaxPoolForwardArgs& a, void* cuda_stream) {
  const auto& s = a.shape;
  const int64_t threads = s.samples * s.out_height * s.out_width * (s.channels / 8);
  if (threads == 0) return;
  auto stream = static_cast<cudaStream_t>(cuda_stream);
  if (a.type == ElemType::kBFloat16)
    max_pool_forward_kernel<__nv_bfloat16><<<blocks_for(threads), kThreads, 0, stream>>>(a);
  else
    max_pool_forward_kernel<float><<<blocks_for(threads), kThreads, 0, stream>>>(a);
}

void max_pool_backward(const MaxPoolBackwardArgs& a, void* cuda_stream) {
  const auto& s = a.shape;
  const int64_t threads = s.samples * s.height * s.width * (s.channels / 8);
  if (threads == 0) return;
  auto stream = static_cast<cudaStream_t>(cuda_stream);
  if (a.type == ElemType::kBFloat16)
    max_pool_backward_kernel<__nv_bfloat16><<<blocks_for(threads), kThreads, 0, stream>>>(a);
  else
    max_pool_backward_kernel<float><<<blocks_for(threads), kThreads, 0, stream>>>(a);
}

}  // namespace vitlab::kernels
