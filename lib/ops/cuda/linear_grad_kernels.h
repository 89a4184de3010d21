// Bias gradients (column sums of a bfloat16 gradient) and the exact-erf GELU backward fused with
// them, as CUDA kernels (compiled only in the CUDA build). Plain C++ header, as
// fused_norm_kernels.h.
#pragma once
#include <cstdint>

namespace vitlab::kernels {

// Column sums of a (rows, cols) bfloat16 matrix in float32, per row chunk: `partial` is
// (chunks, cols), summed over chunks by the caller. cols % 8 == 0 and 16-byte aligned rows.
struct ColumnSumArgs {
  const void* grad = nullptr;         // (rows, cols) bfloat16: the output gradient
  const void* input = nullptr;        // GELU only: (rows, cols) bfloat16 pre-activation h
  void* grad_input = nullptr;         // GELU only: (rows, cols) bfloat16 grad * gelu'(h)
  const float* gelu_table = nullptr;  // GELU only: see gelu_table_bits
  float* partial = nullptr;           // (chunks, cols)
  int64_t rows = 0;
  int cols = 0;
};
inline bool column_sum_supported(int64_t cols) {
  return cols > 0 && cols % 8 == 0;
}
// How many row chunks column_sums (gelu: gelu_backward_column_sums) should split `rows` into.
int column_sum_chunks(int64_t rows, int64_t cols, int sm_count, bool gelu = false);
// partial = column sums of grad.
void column_sums(const ColumnSumArgs& args, int chunks, void* cuda_stream);
// grad_input = grad * gelu'(input) (exact erf form, rounded to bfloat16); partial = its column
// sums. gelu'(h) comes from the float32 table `gelu_table` inside its window.
void gelu_backward_column_sums(const ColumnSumArgs& args, int chunks, void* cuda_stream);

// GELU by table lookup. bf16 has 65536 values, so for every h in the window |h| in [2^-24, 256)
// (8192 values) a table holds what ATen's kernels compute: GELU(h) rounded to bf16 (forward) and
// gelu'(h) in float32 (backward), filled by ATen itself, so the results are bitwise ATen's. Outside
// the window the kernels evaluate ATen's float32 formula. Entry i is the input with bf16 bits
// gelu_table_bits(i).
constexpr int kGeluTableEntries = 8192;
constexpr uint32_t kGeluTableFirstBits = 103u << 7;  // exponent 103: 2^-24
uint16_t gelu_table_bits(int i);
// out = GELU(input), both (n) bfloat16, n % 8 == 0, 16-byte aligned; `table`: kGeluTableEntries
// bf16 values.
void gelu_forward(const void* input, void* out, int64_t n, const void* table, int sm_count,
                  void* cuda_stream);

// out[g * cols + c] = the sum over k of partial[g][k][c] (g < groups, k < chunks), summed in a
// fixed order and rounded to bfloat16, written as float32: a bias gradient as autocast's path
// has it (summed in float32, rounded to the bf16 bias, cast to the float32 parameter). One kernel
// where ATen took three (sum, two casts).
void finish_column_sums(const float* partial, int groups, int chunks, int cols, float* out,
                        void* cuda_stream);

}  // namespace vitlab::kernels
