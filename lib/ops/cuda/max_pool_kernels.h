// Max-pooling over channels-last (NHWC) activations with explicit constant padding, as CUDA
// kernels (compiled only in the CUDA build; plain C++ like the other kernel headers). For BiT's
// stem: ATen pads with a separate copy, saves 64-bit indices, and its NHWC backward was 4% of
// BiT-R50x1's train step on an H200. Here the padding is virtual (a window position outside the
// map reads `pad_value`), the argmax is one byte per output (its position in the window), and the
// backward gathers, per input, the gradients of the windows whose argmax it is.
#pragma once
#include <cstdint>

#include "ops/cuda/fused_norm_kernels.h"  // ElemType

namespace vitlab::kernels {

// Eight channels per thread (16-byte loads); window positions must fit the byte.
inline bool max_pool_shape_supported(int64_t channels, int64_t kernel) {
  return channels > 0 && channels % 8 == 0 && kernel > 0 && kernel * kernel < 256;
}

struct MaxPoolShape {
  int64_t samples = 0;
  int height = 0, width = 0, channels = 0;
  int out_height = 0, out_width = 0;
  int kernel = 0, stride = 0;
  int pad_top = 0, pad_left = 0;  // the bottom/right padding follows from the output size
};

struct MaxPoolForwardArgs {
  MaxPoolShape shape;
  const void* x = nullptr;  // (N, H, W, C)
  ElemType type = ElemType::kFloat32;
  void* out = nullptr;        // (N, OH, OW, C) in the same type
  uint8_t* argmax = nullptr;  // (N, OH, OW, C) window position (row-major) of the maximum
  float pad_value = 0.f;
};
void max_pool_forward(const MaxPoolForwardArgs& args, void* cuda_stream);

struct MaxPoolBackwardArgs {
  MaxPoolShape shape;
  const void* grad_out = nullptr;  // (N, OH, OW, C)
  ElemType type = ElemType::kFloat32;
  const uint8_t* argmax = nullptr;
  void* grad_x = nullptr;  // (N, H, W, C) in the same type
};
void max_pool_backward(const MaxPoolBackwardArgs& args, void* cuda_stream);

}  // namespace vitlab::kernels
