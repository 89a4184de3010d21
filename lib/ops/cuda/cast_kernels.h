// float32 -> bfloat16 casts of many tensors in one kernel launch (compiled only in the CUDA
// build). Plain C++ header, as the other kernel headers.
#pragma once
#include <cstdint>

namespace vitlab::kernels {

struct CastSegment {
  const float* src = nullptr;
  void* dst = nullptr;  // bfloat16
  int64_t n = 0;
};

// Up to kMaxCastSegments tensors per launch (the batch travels as a kernel argument).
constexpr int kMaxCastSegments = 64;
struct CastBatch {
  CastSegment segments[kMaxCastSegments];
  int count = 0;
};

// dst = src rounded to nearest even (ATen's float -> bfloat16), for every segment.
void cast_to_bf16(const CastBatch& batch, void* cuda_stream);

}  // namespace vitlab::kernels
