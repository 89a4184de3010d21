// Microbenchmark behind the GELU tables (lib/ops/cuda/linear_grad_kernels.cu): GELU forward and
// backward + column sums on ViT-B/16's MLP activation (50432 x 3072 bf16), evaluating the float32
// formula against reading the bf16-indexed table from shared memory, next to a plain copy.
// Standalone; on the GPU machine:
//   nvcc -std=c++17 -O3 -arch=sm_90 -Ilib -o /tmp/gelu_bench scripts/bench_gelu_kernels.cu && /tmp/gelu_bench
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cstring>
#include "ops/cuda/vec8.cuh"
using namespace vitlab::kernels;

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1);} } while (0)

__device__ __forceinline__ float gelu_f(float x) { return x * 0.5f * (1.0f + erff(x * 0.70710678118654752440f)); }
__device__ __forceinline__ float gelu_d(float x) {
  const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
  const float pdf = expf(-0.5f * x * x) * 0.39894228040143267794f;
  return cdf + x * pdf;
}
__device__ __forceinline__ float gelu_d_fast(float x) {
  const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
  const float pdf = 0.39894228040143267794f * __expf(-0.5f * x * x);
  return cdf + x * pdf;
}
constexpr int kLo = 103 << 7;  // exponent 103: |h| >= 2^-24
constexpr int kEntries = 8192;
__device__ __forceinline__ int table_index(uint32_t b) {  // -1 outside
  const uint32_t t = (b & 0x7FFFu) - kLo;
  return t < 4096u ? int(t | ((b >> 3) & 0x1000u)) : -1;
}
__global__ void fill_tables(__nv_bfloat16* fwd, float* bwd) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= kEntries) return;
  uint32_t b = ((i & 0x1000) << 3) | ((i & 0xFFF) + kLo);
  float x = __bfloat162float(__ushort_as_bfloat16((unsigned short)b));
  fwd[i] = __float2bfloat16_rn(gelu_f(x));
  bwd[i] = gelu_d(x);
}
__global__ void copy_kernel(const uint4* a, uint4* b, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) b[i] = a[i];
}
template <bool kTable>
__global__ void __launch_bounds__(256) gelu_fwd(const __nv_bfloat16* h, __nv_bfloat16* out, int64_t n8, const __nv_bfloat16* table) {
  __shared__ __nv_bfloat16 t[kEntries];
  if (kTable) {
    for (int i = threadIdx.x; i < kEntries / 8; i += blockDim.x) reinterpret_cast<uint4*>(t)[i] = reinterpret_cast<const uint4*>(table)[i];
    __syncthreads();
  }
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8; i += (int64_t)gridDim.x * blockDim.x) {
    uint4 raw = reinterpret_cast<const uint4*>(h)[i];
    uint16_t* v = reinterpret_cast<uint16_t*>(&raw);
    #pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (kTable) {
        int j = table_index(v[k]);
        v[k] = j >= 0 ? __bfloat16_as_ushort(t[j]) : __bfloat16_as_ushort(__float2bfloat16_rn(gelu_f(__bfloat162float(__ushort_as_bfloat16(v[k])))));
      } else {
        v[k] = __bfloat16_as_ushort(__float2bfloat16_rn(gelu_f(__bfloat162float(__ushort_as_bfloat16(v[k])))));
      }
    }
    reinterpret_cast<uint4*>(out)[i] = raw;
  }
}
constexpr int kColumnThreads = 32, kRowThreads = 8, kBlockColumns = 256;
template <int kMode>  // 0 formula(__expf) 1 table
__global__ void __launch_bounds__(256) colsum(const __nv_bfloat16* grad, const __nv_bfloat16* input, __nv_bfloat16* grad_input, float* partial_out, int64_t rows, int cols, const float* table) {
  __shared__ float partial[kRowThreads][kBlockColumns];
  __shared__ float t[kMode == 1 ? kEntries : 1];
  if (kMode == 1) {
    const int tid = threadIdx.y * kColumnThreads + threadIdx.x;
    for (int i = tid; i < kEntries / 4; i += 256) reinterpret_cast<float4*>(t)[i] = reinterpret_cast<const float4*>(table)[i];
    __syncthreads();
  }
  const int col = (blockIdx.x * kColumnThreads + threadIdx.x) * 8;
  const int64_t rows_per_chunk = (rows + gridDim.y - 1) / gridDim.y;
  const int64_t first = blockIdx.y * rows_per_chunk;
  const int64_t last = min(rows, first + rows_per_chunk);
  float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (col < cols) {
#pragma unroll 4
    for (int64_t row = first + threadIdx.y; row < last; row += kRowThreads) {
      const int64_t at = row * cols + col;
      Vec8 g = load8(grad + at);
      if (kMode == 0) {
        const Vec8 h = load8(input + at);
#pragma unroll
        for (int k = 0; k < 8; ++k) g.v[k] *= gelu_d_fast(h.v[k]);
      } else {
        const uint4 raw = *reinterpret_cast<const uint4*>(input + at);
        const uint16_t* hv = reinterpret_cast<const uint16_t*>(&raw);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          int j = table_index(hv[k]);
          g.v[k] *= j >= 0 ? t[j] : gelu_d(__bfloat162float(__ushort_as_bfloat16(hv[k])));
        }
      }
      store8_rounded(grad_input + at, g);
#pragma unroll
      for (int k = 0; k < 8; ++k) sum[k] += g.v[k];
    }
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) partial[threadIdx.y][threadIdx.x * 8 + k] = sum[k];
  __syncthreads();
  const int tt = threadIdx.y * kColumnThreads + threadIdx.x;
  const int out_col = blockIdx.x * kBlockColumns + tt;
  if (out_col < cols) {
    float s = 0.f;
    for (int r = 0; r < kRowThreads; ++r) s += partial[r][tt];
    partial_out[(int64_t)blockIdx.y * cols + out_col] = s;
  }
}

template <class F> float time_it(F f) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> ms;
  for (int r = 0; r < 20; ++r) { cudaEventRecord(a); f(); cudaEventRecord(b); cudaEventSynchronize(b); float m; cudaEventElapsedTime(&m, a, b); ms.push_back(m); }
  std::sort(ms.begin(), ms.end());
  CK(cudaGetLastError());
  return ms[ms.size() / 2];
}

int main() {
  const int64_t rows = 50432, cols = 3072, n = rows * cols;
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  std::vector<uint16_t> host(n);
  uint64_t s = 12345;
  auto rnd = [&]() { s = s * 6364136223846793005ULL + 1442695040888963407ULL; return (double)((s >> 11) & ((1ULL << 53) - 1)) / (double)(1ULL << 53); };
  std::vector<uint16_t> hg(n);
  for (int64_t i = 0; i < n; ++i) {
    double u1 = rnd() + 1e-12, u2 = rnd();
    double z = sqrt(-2 * log(u1)) * cos(6.283185307 * u2);
    float hf = (float)(z * 1.5 - 0.3), gf = (float)(z * 0.01);
    __nv_bfloat16 hb = __float2bfloat16_rn(hf), gb = __float2bfloat16_rn((float)(sin((double)i) * 0.01));
    memcpy(&host[i], &hb, 2); memcpy(&hg[i], &gb, 2);
  }
  __nv_bfloat16 *h, *g, *o1, *o2, *ft; float *bt, *part;
  CK(cudaMalloc(&h, n * 2)); CK(cudaMalloc(&g, n * 2)); CK(cudaMalloc(&o1, n * 2)); CK(cudaMalloc(&o2, n * 2));
  CK(cudaMalloc(&ft, kEntries * 2)); CK(cudaMalloc(&bt, kEntries * 4)); CK(cudaMalloc(&part, 1024 * cols * 4));
  CK(cudaMemcpy(h, host.data(), n * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(g, hg.data(), n * 2, cudaMemcpyHostToDevice));
  fill_tables<<<kEntries / 256, 256>>>(ft, bt); CK(cudaDeviceSynchronize());
  const int64_t n8 = n / 8;
  double mb = n * 2 / 1e6;
  for (int bps : {4, 8, 16}) {
    float t = time_it([&] { copy_kernel<<<sms * bps, 256>>>((const uint4*)h, (uint4*)o1, n8); });
    printf("copy bf16 (bps %d): %.4f ms  %.0f GB/s\n", bps, t, 2 * mb / t);
  }
  for (int bps : {4, 8}) {
    float t0 = time_it([&] { gelu_fwd<false><<<sms * bps, 256>>>(h, o1, n8, ft); });
    float t1 = time_it([&] { gelu_fwd<true><<<sms * bps, 256>>>(h, o2, n8, ft); });
    printf("gelu fwd formula (bps %d): %.4f ms (%.0f GB/s); table: %.4f ms (%.0f GB/s)\n", bps, t0, 2 * mb / t0, t1, 2 * mb / t1);
  }
  std::vector<uint16_t> r1(n), r2(n);
  CK(cudaMemcpy(r1.data(), o1, n * 2, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(r2.data(), o2, n * 2, cudaMemcpyDeviceToHost));
  int64_t diff = 0; for (int64_t i = 0; i < n; ++i) diff += r1[i] != r2[i];
  printf("fwd table vs formula: %lld of %lld differ\n", (long long)diff, (long long)n);
  const int col_blocks = (cols + 255) / 256;
  int chunks = std::min<int64_t>((8LL * sms + col_blocks - 1) / col_blocks, (rows + 63) / 64);
  for (int ch : {chunks, chunks / 2, chunks * 2}) {
    dim3 grid(col_blocks, ch), block(32, 8);
    float t0 = time_it([&] { colsum<0><<<grid, block>>>(g, h, o1, part, rows, cols, bt); });
    float t1 = time_it([&] { colsum<1><<<grid, block>>>(g, h, o2, part, rows, cols, bt); });
    printf("gelu bwd+colsum chunks %d: fast-formula %.4f ms (%.0f GB/s); table %.4f ms (%.0f GB/s)\n", ch, t0, 3 * mb / t0, t1, 3 * mb / t1);
  }
  CK(cudaMemcpy(r1.data(), o1, n * 2, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(r2.data(), o2, n * 2, cudaMemcpyDeviceToHost));
  diff = 0; for (int64_t i = 0; i < n; ++i) diff += r1[i] != r2[i];
  printf("bwd table(expf) vs fast formula(__expf): %lld of %lld differ\n", (long long)diff, (long long)n);
  return 0;
}
