// Column sums over many rows (a bias gradient: 50k rows x 768..3072 columns for ViT-B/16 at
// batch 256). Each thread owns 8 adjacent columns (one 16-byte load per row) and walks a strided
// set of rows; a warp reads 512 contiguous bytes per row. ATen's general reduction reached about
// half the memory bandwidth on this shape (H200, 2026-11-26).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "models/cuda/linear_grad_kernels.h"
#include "models/cuda/vec8.cuh"

namespace vitlab::kernels {
namespace {

constexpr int kColumnThreads = 32;  // x: 32 threads x 8 columns = 256 columns per block
constexpr int kRowThreads = 8;      // y: rows walked in parallel
constexpr int kColumnsPerThread = 8;
constexpr int kBlockColumns = kColumnThreads * kColumnsPerThread;
constexpr int kBlockThreads = kColumnThreads * kRowThreads;

// d/dh of h * Phi(h) = Phi(h) + h * phi(h), computed in float32 as ATen's GeluBackward (erf form).
__device__ __forceinline__ float gelu_derivative(float h) {
  constexpr float kAlpha = 0.70710678118654752440f;  // 1 / sqrt(2)
  constexpr float kBeta = 0.39894228040143267794f;   // 1 / sqrt(2 pi)
  const float cdf = 0.5f * (1.0f + erff(h * kAlpha));
  // __expf: relative error below 1e-6 where the pdf matters (|h| < 10), three orders of
  // magnitude below the bf16 rounding of the gradient it scales.
  const float pdf = kBeta * __expf(-0.5f * h * h);
  return cdf + h * pdf;
}

template <bool kGelu>
__global__ void __launch_bounds__(kBlockThreads) column_sum_kernel(ColumnSumArgs a) {
  __shared__ float partial[kRowThreads][kBlockColumns];
  const int col = (blockIdx.x * kColumnThreads + threadIdx.x) * kColumnsPerThread;
  const int64_t rows_per_chunk = (a.rows + gridDim.y - 1) / gridDim.y;
  const int64_t first = blockIdx.y * rows_per_chunk;
  const int64_t last = min(a.rows, first + rows_per_chunk);
  float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (col < a.cols) {
    const auto* grad = static_cast<const __nv_bfloat16*>(a.grad);
#pragma unroll 4
    for (int64_t row = first + threadIdx.y; row < last; row += kRowThreads) {
      const int64_t at = row * a.cols + col;
      Vec8 g = load8(grad + at);
      if constexpr (kGelu) {
        const Vec8 h = load8(static_cast<const __nv_bfloat16*>(a.input) + at);
#pragma unroll
        for (int k = 0; k < 8; ++k) g.v[k] *= gelu_derivative(h.v[k]);
        // Sums the bf16 values written, as autograd would sum the bf16 gradient.
        store8_rounded(static_cast<__nv_bfloat16*>(a.grad_input) + at, g);
      }
#pragma unroll
      for (int k = 0; k < 8; ++k) sum[k] += g.v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) partial[threadIdx.y][threadIdx.x * kColumnsPerThread + k] = sum[k];
  __syncthreads();
  // 256 threads, 256 columns of this block: one column each, summed over the row threads.
  const int t = threadIdx.y * kColumnThreads + threadIdx.x;
  const int out_col = blockIdx.x * kBlockColumns + t;
  if (out_col < a.cols) {
    float s = 0.f;
#pragma unroll
    for (int r = 0; r < kRowThreads; ++r) s += partial[r][t];
    a.partial[static_cast<int64_t>(blockIdx.y) * a.cols + out_col] = s;
  }
}

// A block sums 32 columns: each of its 8 warps a strided subset of the chunks, then the warps'
// sums in order (deterministic).
constexpr int kFinishColumns = 32, kFinishRows = 8;

__global__ void __launch_bounds__(kFinishColumns* kFinishRows)
    finish_column_sums_kernel(const float* partial, int chunks, int cols, float* out) {
  __shared__ float sums[kFinishRows][kFinishColumns];
  const int col = blockIdx.x * kFinishColumns + threadIdx.x;
  const float* group = partial + static_cast<int64_t>(blockIdx.y) * chunks * cols;
  float s = 0.f;
  if (col < cols)
    for (int k = threadIdx.y; k < chunks; k += kFinishRows)
      s += group[static_cast<int64_t>(k) * cols + col];
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || col >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int r = 0; r < kFinishRows; ++r) total += sums[r][threadIdx.x];
  out[static_cast<int64_t>(blockIdx.y) * cols + col] = __bfloat162float(__float2bfloat16_rn(total));
}

template <bool kGelu>
void launch(const ColumnSumArgs& a, int chunks, void* cuda_stream) {
  const dim3 block(kColumnThreads, kRowThreads);
  const dim3 grid((a.cols + kBlockColumns - 1) / kBlockColumns, chunks);
  column_sum_kernel<kGelu><<<grid, block, 0, static_cast<cudaStream_t>(cuda_stream)>>>(a);
}

}  // namespace

int column_sum_chunks(int64_t rows, int64_t cols, int sm_count) {
  // About 8 blocks per SM in all, each walking at least 64 rows.
  const int64_t column_blocks = (cols + kBlockColumns - 1) / kBlockColumns;
  int64_t chunks = (8LL * (sm_count > 0 ? sm_count : 1) + column_blocks - 1) / column_blocks;
  const int64_t most = (rows + 63) / 64;
  if (chunks > most) chunks = most;
  return static_cast<int>(chunks > 0 ? chunks : 1);
}

void column_sums(const ColumnSumArgs& a, int chunks, void* cuda_stream) {
  launch<false>(a, chunks, cuda_stream);
}

void gelu_backward_column_sums(const ColumnSumArgs& a, int chunks, void* cuda_stream) {
  launch<true>(a, chunks, cuda_stream);
}

void finish_column_sums(const float* partial, int groups, int chunks, int cols, float* out,
                        void* cuda_stream) {
  const dim3 block(kFinishColumns, kFinishRows);
  const dim3 grid((cols + kFinishColumns - 1) / kFinishColumns, groups);
  finish_column_sums_kernel<<<grid, block, 0, static_cast<cudaStream_t>(cuda_stream)>>>(
      partial, chunks, cols, out);
}

}  // namespace vitlab::kernels
