// Eight channels at a time in registers, loaded and stored as 16 bytes (bf16) or 32 (float32):
// the unit of work of the channels-last kernels (GroupNorm, max-pool) and of the bias-gradient
// column sums. Device code only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace vitlab::kernels {

struct Vec8 {
  float v[8];
};

__device__ __forceinline__ Vec8 load8(const float* p) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  return {{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
}
__device__ __forceinline__ Vec8 load8(const __nv_bfloat16* p) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
  Vec8 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[i]));
    out.v[2 * i] = f.x, out.v[2 * i + 1] = f.y;
  }
  return out;
}
__device__ __forceinline__ void store8(float* p, const Vec8& x) {
  reinterpret_cast<float4*>(p)[0] = make_float4(x.v[0], x.v[1], x.v[2], x.v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(x.v[4], x.v[5], x.v[6], x.v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const Vec8& x) {
  uint32_t words[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    // Round to nearest even, as ATen's float -> bfloat16 conversion.
    const __nv_bfloat162 h = __floats2bfloat162_rn(x.v[2 * i], x.v[2 * i + 1]);
    words[i] = *reinterpret_cast<const uint32_t*>(&h);
  }
  *reinterpret_cast<uint4*>(p) = make_uint4(words[0], words[1], words[2], words[3]);
}

// Rounds x to bfloat16 in place and stores it: x then holds what was written (for sums that
// must add the stored values).
__device__ __forceinline__ void store8_rounded(__nv_bfloat16* p, Vec8& x) {
#pragma unroll
  for (int k = 0; k < 8; ++k) x.v[k] = __bfloat162float(__float2bfloat16_rn(x.v[k]));
  store8(p, x);
}

}  // namespace vitlab::kernels
