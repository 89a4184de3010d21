// One launch for a batch of float32 -> bfloat16 casts: blockIdx.y picks the segment, the blocks
// along x stride over it, four elements per thread and step where the pointers allow.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "ops/cuda/cast_kernels.h"

namespace vitlab::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) cast_kernel(CastBatch batch) {
  const CastSegment s = batch.segments[blockIdx.y];
  auto* dst = static_cast<__nv_bfloat16*>(s.dst);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool vector =
      reinterpret_cast<uintptr_t>(s.src) % 16 == 0 && reinterpret_cast<uintptr_t>(s.dst) % 8 == 0;
  int64_t done = 0;
  if (vector) {
    const int64_t quads = s.n / 4;
    for (int64_t i = first; i < quads; i += stride) {
      const float4 v = reinterpret_cast<const float4*>(s.src)[i];
      __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
      uint2 raw;
      raw.x = *reinterpret_cast<uint32_t*>(&lo);
      raw.y = *reinterpret_cast<uint32_t*>(&hi);
      reinterpret_cast<uint2*>(dst)[i] = raw;
    }
    done = quads * 4;
  }
  for (int64_t i = done + first; i < s.n; i += stride) dst[i] = __float2bfloat16_rn(s.src[i]);
}

}  // namespace

void cast_to_bf16(const CastBatch& batch, void* cuda_stream) {
  if (batch.count == 0) return;
  int64_t largest = 0;
  for (int i = 0; i < batch.count; ++i) largest = std::max(largest, batch.segments[i].n);
  // Enough blocks along x that the largest tensor takes ~16 steps per thread, at most 64.
  const int64_t per_block = int64_t{kThreads} * 4 * 16;
  const int blocks =
      static_cast<int>(std::clamp<int64_t>((largest + per_block - 1) / per_block, 1, 64));
  cast_kernel<<<dim3(blocks, batch.count), kThreads, 0, static_cast<cudaStream_t>(cuda_stream)>>>(
      batch);
}

}  // namespace vitlab::kernels
