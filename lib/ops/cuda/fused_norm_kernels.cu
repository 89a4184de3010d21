// One warp per row: the row (at most 1024 floats) stays in registers between the mean, the
// variance and the output, so the forward reads x and delta once and writes sum and out once;
// the backward reads grad_out, grad_sum and the input (or the input and the delta added to it)
// once. gamma/beta gradients are summed per block in shared memory and then over blocks by the
// caller (deterministic, no atomics).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "ops/cuda/fused_norm_kernels.h"

namespace vitlab::kernels {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;

__device__ __forceinline__ float4 load4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
__device__ __forceinline__ void store4(float* p, float4 v) {
  *reinterpret_cast<float4*>(p) = v;
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
  // Round to nearest even, as ATen's float -> bfloat16 conversion.
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 raw;
  raw.x = *reinterpret_cast<uint32_t*>(&lo);
  raw.y = *reinterpret_cast<uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(p) = raw;
}
__device__ __forceinline__ float round_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <int kSteps, typename TDelta, typename TOut>
__global__ void __launch_bounds__(kThreads) norm_forward_kernel(NormForwardArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= a.rows) return;
  const int width = a.width;
  const int64_t base = row * width;
  const auto* delta = static_cast<const TDelta*>(a.delta);
  float v[kSteps * 4];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kSteps; ++i) {
    const int c = (i * 32 + lane) * 4;
    if (c < width) {
      float4 x = load4(a.x + base + c);
      if (delta) {
        const float4 d = load4(delta + base + c);
        x = make_float4(x.x + d.x, x.y + d.y, x.z + d.z, x.w + d.w);
        store4(a.sum + base + c, x);
      }
      v[i * 4 + 0] = x.x, v[i * 4 + 1] = x.y, v[i * 4 + 2] = x.z, v[i * 4 + 3] = x.w;
      sum += (x.x + x.y) + (x.z + x.w);
    }
  }
  const float mean = warp_sum(sum) / width;
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kSteps; ++i) {
    if ((i * 32 + lane) * 4 < width) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float d = v[i * 4 + k] - mean;
        squares += d * d;
      }
    }
  }
  const float rstd = rsqrtf(warp_sum(squares) / width + a.eps);  // biased variance, as ATen
  auto* out = static_cast<TOut*>(a.out);
#pragma unroll
  for (int i = 0; i < kSteps; ++i) {
    const int c = (i * 32 + lane) * 4;
    if (c < width) {
      const float4 g = load4(a.gamma + c), b = load4(a.beta + c);
      store4(out + base + c, make_float4((v[i * 4 + 0] - mean) * rstd * g.x + b.x,
                                         (v[i * 4 + 1] - mean) * rstd * g.y + b.y,
                                         (v[i * 4 + 2] - mean) * rstd * g.z + b.z,
                                         (v[i * 4 + 3] - mean) * rstd * g.w + b.w));
    }
  }
  if (lane == 0) {
    a.mean[row] = mean;
    a.rstd[row] = rstd;
  }
}

// Backward: 2 blocks of 8 warps per SM. The gamma/beta gradient sums live in shared memory (one
// row per warp), not registers: in registers they made ~170 registers per thread, one block per
// SM, and the kernel latency-bound at ~55% of memory bandwidth.
constexpr int kBackwardBlocksPerSm = 2;

template <int kSteps, typename TGrad, typename TGradDelta>
__global__ void __launch_bounds__(kThreads, kBackwardBlocksPerSm)
    norm_backward_kernel(NormBackwardArgs a) {
  constexpr bool kDeltaIsBf16 = std::is_same_v<TGradDelta, __nv_bfloat16>;
  // gamma (width), then dgamma, dbeta and (with partial_delta) the grad_delta sums, (kWarps,
  // width) each.
  extern __shared__ float shared[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int width = a.width;
  float* gamma = shared;
  float* dgamma = shared + width + warp * width;
  float* dbeta = shared + width + (kWarps + warp) * width;
  const bool sum_delta = kDeltaIsBf16 && a.partial_delta != nullptr;
  float* ddelta = shared + width + (2 * kWarps + warp) * width;
  for (int c = threadIdx.x; c < width; c += kThreads) gamma[c] = a.gamma[c];
  for (int c = lane; c < width; c += 32) {
    dgamma[c] = 0.f, dbeta[c] = 0.f;
    if (sum_delta) ddelta[c] = 0.f;
  }
  __syncthreads();
  const auto* grad_out = static_cast<const TGrad*>(a.grad_out);
  auto* grad_delta = static_cast<TGradDelta*>(a.grad_delta);
  const auto* input_delta = static_cast<const __nv_bfloat16*>(a.input_delta);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp; row < a.rows;
       row += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t base = row * width;
    const float mean = a.mean[row], rstd = a.rstd[row];
    float4 xhat[kSteps], g[kSteps];
    float4 stream_grad[kSteps];  // loaded with the others: one memory latency per row, not two
    float sum_g = 0.f, sum_gx = 0.f;
#pragma unroll
    for (int i = 0; i < kSteps; ++i) {
      const int c = (i * 32 + lane) * 4;
      if (c < width) {
        const float4 dy = load4(grad_out + base + c);
        float4 x = load4(a.input + base + c);
        if (input_delta) {  // the forward's sum, recomputed: the same float32 additions
          const float4 d = load4(input_delta + base + c);
          x = make_float4(x.x + d.x, x.y + d.y, x.z + d.z, x.w + d.w);
        }
        stream_grad[i] =
            a.grad_sum ? load4(a.grad_sum + base + c) : make_float4(0.f, 0.f, 0.f, 0.f);
        const float4 gm = *reinterpret_cast<const float4*>(gamma + c);
        xhat[i] = make_float4((x.x - mean) * rstd, (x.y - mean) * rstd, (x.z - mean) * rstd,
                              (x.w - mean) * rstd);
        g[i] = make_float4(dy.x * gm.x, dy.y * gm.y, dy.z * gm.z, dy.w * gm.w);
        float4 dgm = *reinterpret_cast<float4*>(dgamma + c),
               dbt = *reinterpret_cast<float4*>(dbeta + c);
        dgm = make_float4(dgm.x + dy.x * xhat[i].x, dgm.y + dy.y * xhat[i].y,
                          dgm.z + dy.z * xhat[i].z, dgm.w + dy.w * xhat[i].w);
        dbt = make_float4(dbt.x + dy.x, dbt.y + dy.y, dbt.z + dy.z, dbt.w + dy.w);
        *reinterpret_cast<float4*>(dgamma + c) = dgm;
        *reinterpret_cast<float4*>(dbeta + c) = dbt;
        sum_g += (g[i].x + g[i].y) + (g[i].z + g[i].w);
        sum_gx +=
            (g[i].x * xhat[i].x + g[i].y * xhat[i].y) + (g[i].z * xhat[i].z + g[i].w * xhat[i].w);
      }
    }
    const float mean_g = warp_sum(sum_g) / width, mean_gx = warp_sum(sum_gx) / width;
#pragma unroll
    for (int i = 0; i < kSteps; ++i) {
      const int c = (i * 32 + lane) * 4;
      if (c < width) {
        const float4 &h = xhat[i], &gg = g[i], &s = stream_grad[i];
        const float4 dx = make_float4(rstd * (gg.x - mean_g - h.x * mean_gx) + s.x,
                                      rstd * (gg.y - mean_g - h.y * mean_gx) + s.y,
                                      rstd * (gg.z - mean_g - h.z * mean_gx) + s.z,
                                      rstd * (gg.w - mean_g - h.w * mean_gx) + s.w);
        store4(a.grad_input + base + c, dx);
        if (grad_delta) store4(grad_delta + base + c, dx);
        if (sum_delta) {  // the bf16 values written, as a bias gradient sums them
          float4 d = *reinterpret_cast<float4*>(ddelta + c);
          d = make_float4(d.x + round_bf16(dx.x), d.y + round_bf16(dx.y), d.z + round_bf16(dx.z),
                          d.w + round_bf16(dx.w));
          *reinterpret_cast<float4*>(ddelta + c) = d;
        }
      }
    }
  }
  // The block's sums over its warps: one row of the (blocks, width) partials each.
  __syncthreads();
  const int64_t out = static_cast<int64_t>(blockIdx.x) * width;
  for (int c = threadIdx.x; c < width; c += kThreads) {
    float sg = 0.f, sb = 0.f, sd = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      sg += shared[width + w * width + c], sb += shared[width + (kWarps + w) * width + c];
      if (sum_delta) sd += shared[width + (2 * kWarps + w) * width + c];
    }
    a.partial_gamma[out + c] = sg;
    a.partial_beta[out + c] = sb;
    if (sum_delta) a.partial_delta[out + c] = sd;
  }
}

template <int kSteps>
void launch_forward(const NormForwardArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((a.rows + kWarps - 1) / kWarps));
  const bool bf16_delta = a.delta && a.delta_type == ElemType::kBFloat16;
  const bool bf16_out = a.out_type == ElemType::kBFloat16;
  if (bf16_delta && bf16_out)
    norm_forward_kernel<kSteps, __nv_bfloat16, __nv_bfloat16><<<grid, kThreads, 0, stream>>>(a);
  else if (bf16_delta)
    norm_forward_kernel<kSteps, __nv_bfloat16, float><<<grid, kThreads, 0, stream>>>(a);
  else if (bf16_out)
    norm_forward_kernel<kSteps, float, __nv_bfloat16><<<grid, kThreads, 0, stream>>>(a);
  else
    norm_forward_kernel<kSteps, float, float><<<grid, kThreads, 0, stream>>>(a);
}

// Blocks of `bytes` dynamic shared memory that fit in `shared_per_sm` (the runtime reserves 1 KiB
// each).
int blocks_per_sm(int bytes, int shared_per_sm) {
  return shared_per_sm / (bytes + 1024);
}

template <int kSteps, typename TGrad, typename TGradDelta>
void launch_backward_typed(const NormBackwardArgs& a, int blocks, cudaStream_t stream) {
  const int shared = norm_backward_shared_bytes(a.width, a.partial_delta && a.grad_delta);
  auto* kernel = norm_backward_kernel<kSteps, TGrad, TGradDelta>;
  // Up to 100 KiB for width 1024 with three sums, above the default 48 KiB (callers check
  // norm_backward_fits / norm_backward_can_sum_delta). The attribute belongs to the current
  // device, so it is set at every such launch (a host-side call, allowed under graph capture);
  // a failure shows as the launch's error.
  if (shared > 48 * 1024)
    (void)cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared);
  kernel<<<blocks, kThreads, shared, stream>>>(a);
}

template <int kSteps>
void launch_backward(const NormBackwardArgs& a, int blocks, cudaStream_t stream) {
  const bool bf16_grad = a.grad_out_type == ElemType::kBFloat16;
  const bool delta = a.grad_delta != nullptr;  // only for a bf16 delta
  if (bf16_grad && delta)
    launch_backward_typed<kSteps, __nv_bfloat16, __nv_bfloat16>(a, blocks, stream);
  else if (bf16_grad)
    launch_backward_typed<kSteps, __nv_bfloat16, float>(a, blocks, stream);
  else if (delta)
    launch_backward_typed<kSteps, float, __nv_bfloat16>(a, blocks, stream);
  else
    launch_backward_typed<kSteps, float, float>(a, blocks, stream);
}

// Calls f(std::integral_constant<int, kSteps>) with the kernels' steps of 128 columns for
// `width` (at most 8: kMaxNormWidth).
template <typename F>
void with_steps(int width, F&& f) {
  switch ((width + 127) / 128) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    default:
      return f(std::integral_constant<int, 8>{});
  }
}

}  // namespace

void norm_forward(const NormForwardArgs& a, void* cuda_stream) {
  if (a.rows == 0) return;
  with_steps(a.width, [&](auto steps) {
    launch_forward<decltype(steps)::value>(a, static_cast<cudaStream_t>(cuda_stream));
  });
}

int norm_backward_shared_bytes(int width, bool sum_delta) {
  return static_cast<int>(sizeof(float)) * (1 + (sum_delta ? 3 : 2) * kWarps) * width;
}

bool norm_backward_fits(int width, int shared_per_block) {
  return norm_backward_shared_bytes(width, false) <= shared_per_block;
}

bool norm_backward_can_sum_delta(int width, int shared_per_block, int shared_per_sm) {
  // The third sum must fit, and must not cost blocks per SM: the grid is sized for one wave of
  // kBackwardBlocksPerSm (e.g. an A100 at width 1024, or sm_86 at 768, would halve it).
  const int with = norm_backward_shared_bytes(width, true);
  const int without = norm_backward_shared_bytes(width, false);
  return with <= shared_per_block &&
         std::min(blocks_per_sm(with, shared_per_sm), kBackwardBlocksPerSm) >=
             std::min(blocks_per_sm(without, shared_per_sm), kBackwardBlocksPerSm);
}

int norm_backward_blocks(int64_t rows, int sm_count) {
  const int64_t wanted = (rows + kWarps - 1) / kWarps;
  const int64_t most = int64_t{kBackwardBlocksPerSm} * (sm_count > 0 ? sm_count : 1);  // one wave
  return static_cast<int>(wanted < most ? (wanted > 0 ? wanted : 1) : most);
}

void norm_backward(const NormBackwardArgs& a, int blocks, void* cuda_stream) {
  with_steps(a.width, [&](auto steps) {
    launch_backward<decltype(steps)::value>(a, blocks, static_cast<cudaStream_t>(cuda_stream));
  });
}

}  // namespace vitlab::kernels
