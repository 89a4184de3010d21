// One thread per output pixel of one job (blockIdx.y): each of the output's columns' taps is the
// weighted sum down the crop's rows, then the taps' weighted sum, as crop_resize's two passes
// compute them. __fmul_rn and __fadd_rn keep nvcc from fusing them into FMAs, whose single
// rounding would differ from the CPU's in the last bit.
#include <cuda_runtime.h>

#include "data/cuda/crop_resize_kernels.h"

namespace vitlab::kernels {
namespace {

constexpr int kThreads = 256;

__device__ uint8_t round_to_byte(float v) {  // crop_resize's: clamp, then round half to even
  return static_cast<uint8_t>(rintf(fminf(fmaxf(v, 0.0f), 255.0f)));
}

__global__ void __launch_bounds__(kThreads) crop_resize_kernel(CropResizeArgs a) {
  const CropResizeJob j = a.jobs[blockIdx.y];
  const int s = a.size;
  const int pixel = blockIdx.x * kThreads + threadIdx.x;
  if (pixel >= s * s) return;
  const int y = pixel / s, x = pixel % s;
  const int first_y = a.ints[j.y_ints + y], count_y = a.ints[j.y_ints + s + y];
  const int first_x = a.ints[j.x_ints + x], count_x = a.ints[j.x_ints + s + x];
  const float* wy = a.weights + j.y_weights + static_cast<int64_t>(y) * j.y_taps;
  const float* wx = a.weights + j.x_weights + static_cast<int64_t>(x) * j.x_taps;
  const uint8_t* top_left = j.image + static_cast<int64_t>(j.top + first_y) * j.pitch +
                            static_cast<int64_t>(j.left + first_x) * 3;
  float v[3] = {0.0f, 0.0f, 0.0f};
  for (int tx = 0; tx < count_x; ++tx) {
    float column[3] = {0.0f, 0.0f, 0.0f};  // crop_resize's first pass at this column
    const uint8_t* p = top_left + tx * 3;
    for (int ty = 0; ty < count_y; ++ty, p += j.pitch)
#pragma unroll
      for (int c = 0; c < 3; ++c)
        column[c] = __fadd_rn(column[c], __fmul_rn(wy[ty], static_cast<float>(p[c])));
#pragma unroll
    for (int c = 0; c < 3; ++c) v[c] = __fadd_rn(v[c], __fmul_rn(wx[tx], column[c]));
  }
  const int col = j.flip ? s - 1 - x : x;
  uint8_t* out = a.out + static_cast<int64_t>(j.row) * 3 * s * s + static_cast<int64_t>(y) * s + col;
#pragma unroll
  for (int c = 0; c < 3; ++c) out[static_cast<int64_t>(c) * s * s] = round_to_byte(v[c]);
}

}  // namespace

void crop_resize_batch(const CropResizeArgs& a, void* cuda_stream) {
  if (a.count == 0) return;
  const dim3 grid((a.size * a.size + kThreads - 1) / kThreads, a.count);
  crop_resize_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(cuda_stream)>>>(a);
}

}  // namespace vitlab::kernels
