// Column sums over many rows (a bias gradient: 50k rows x 768..3072 columns for ViT-B/16 at
// batch 256). Each thread owns 8 adjacent columns (one 16-byte load per row) and walks a strided
// set of rows; a warp reads 512 contiguous bytes per row. ATen's general reduction reached about
// half the memory bandwidth on this shape (H200, 2026-11-26).
//
// GELU forward and backward read their per-element values from tables in shared memory, indexed
// by the bf16 input's bits (see linear_grad_kernels.h): erf and exp made both kernels compute-
// bound. On one H200 (50432 x 3072): forward 0.199 -> 0.168 ms (a plain copy: 0.164 ms), backward
// with the column sums 0.309 -> 0.270 ms.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "ops/cuda/linear_grad_kernels.h"
#include "ops/cuda/vec8.cuh"

namespace vitlab::kernels {
namespace {

constexpr int kColumnThreads = 32;  // x: 32 threads x 8 columns = 256 columns per block
constexpr int kRowThreads = 8;      // y: rows walked in parallel
constexpr int kColumnsPerThread = 8;
constexpr int kBlockColumns = kColumnThreads * kColumnsPerThread;
constexpr int kBlockThreads = kColumnThreads * kRowThreads;

constexpr float kAlpha = 0.70710678118654752440f;  // 1 / sqrt(2)
constexpr float kBeta = 0.39894228040143267794f;   // 1 / sqrt(2 pi)

// Outside the tables' window: the float32 formulas of ATen's GeluCUDAKernelImpl (erf form) and
// GeluBackwardCUDAKernelImpl.
__device__ __forceinline__ float gelu_formula(float h) {
  return h * 0.5f * (1.0f + erff(h * kAlpha));
}
__device__ __forceinline__ float gelu_derivative_formula(float h) {
  const float cdf = 0.5f * (1.0f + erff(h * kAlpha));
  const float pdf = expf(-0.5f * h * h) * kBeta;
  return cdf + h * pdf;
}

__device__ __forceinline__ int table_index(uint32_t bits) {
  const uint32_t magnitude = (bits & 0x7FFFu) - kGeluTableFirstBits;
  return magnitude < kGeluTableEntries / 2 ? static_cast<int>(magnitude | ((bits >> 3) & 0x1000u))
                                           : -1;
}

// Copies a table of `bytes` (a multiple of 16) into shared memory, all threads of the block.
__device__ __forceinline__ void load_table(void* shared, const void* table, int bytes, int thread,
                                           int threads) {
  for (int i = thread; i < bytes / 16; i += threads)
    static_cast<uint4*>(shared)[i] = static_cast<const uint4*>(table)[i];
  __syncthreads();
}

constexpr int kGeluThreads = 256;

__global__ void __launch_bounds__(kGeluThreads)
    gelu_forward_kernel(const uint4* input, uint4* out, int64_t vectors, const void* table) {
  __shared__ __align__(16) uint16_t values[kGeluTableEntries];  // bf16 bits
  load_table(values, table, sizeof(values), threadIdx.x, kGeluThreads);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kGeluThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kGeluThreads + threadIdx.x; i < vectors;
       i += stride) {
    uint4 raw = input[i];
    auto* v = reinterpret_cast<uint16_t*>(&raw);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const int j = table_index(v[k]);
      v[k] = j >= 0 ? values[j]
                    : __bfloat16_as_ushort(__float2bfloat16_rn(
                          gelu_formula(__bfloat162float(__ushort_as_bfloat16(v[k])))));
    }
    out[i] = raw;
  }
}

template <bool kGelu>
__global__ void __launch_bounds__(kBlockThreads) column_sum_kernel(ColumnSumArgs a) {
  __shared__ float partial[kRowThreads][kBlockColumns];
  __shared__ __align__(16) float derivative[kGelu ? kGeluTableEntries : 4];
  if constexpr (kGelu)
    load_table(derivative, a.gelu_table, sizeof(derivative),
               threadIdx.y * kColumnThreads + threadIdx.x, kBlockThreads);
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
        const uint4 raw =
            *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(a.input) + at);
        const auto* h = reinterpret_cast<const uint16_t*>(&raw);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          const int j = table_index(h[k]);
          g.v[k] *= j >= 0 ? derivative[j]
                           : gelu_derivative_formula(__bfloat162float(__ushort_as_bfloat16(h[k])));
        }
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

int column_sum_chunks(int64_t rows, int64_t cols, int sm_count, bool gelu) {
  // About 8 blocks per SM in all (GELU: 4, one wave, as its 40 KiB of shared memory lets 5 blocks
  // share an SM; 8 gave a second, partial wave and took 4% longer on an H200), each walking at
  // least 64 rows.
  const int64_t column_blocks = (cols + kBlockColumns - 1) / kBlockColumns;
  const int64_t blocks = (gelu ? 4LL : 8LL) * (sm_count > 0 ? sm_count : 1);
  int64_t chunks = (blocks + column_blocks - 1) / column_blocks;
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

uint16_t gelu_table_bits(int i) {
  return static_cast<uint16_t>(((i & 0x1000) << 3) | ((i & 0xFFF) + kGeluTableFirstBits));
}

void gelu_forward(const void* input, void* out, int64_t n, const void* table, int sm_count,
                  void* cuda_stream) {
  const int64_t vectors = n / 8;
  // Eight blocks per SM (16 KiB of table each), striding over the vectors.
  const int64_t wanted = (vectors + kGeluThreads - 1) / kGeluThreads;
  const int blocks =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, 8LL * sm_count)));
  gelu_forward_kernel<<<blocks, kGeluThreads, 0, static_cast<cudaStream_t>(cuda_stream)>>>(
      static_cast<const uint4*>(input), static_cast<uint4*>(out), vectors, table);
}

void finish_column_sums(const float* partial, int groups, int chunks, int cols, float* out,
                        void* cuda_stream) {
  const dim3 block(kFinishColumns, kFinishRows);
  const dim3 grid((cols + kFinishColumns - 1) / kFinishColumns, groups);
  finish_column_sums_kernel<<<grid, block, 0, static_cast<cudaStream_t>(cuda_stream)>>>(
      partial, chunks, cols, out);
}

}  // namespace vitlab::kernels
