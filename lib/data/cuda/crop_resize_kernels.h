// crop_resize (data/crop_transforms.h) as a CUDA kernel, for a batch of decoded images of
// different sizes on the device (compiled only in the CUDA build; plain C++ like the other kernel
// headers). The axis weights come from the host's axis_weights, and each output sums them in
// crop_resize's order with separate float multiplies and adds (no fused multiply-add), so the
// pixels are crop_resize's bit for bit.
#pragma once
#include <cstdint>

namespace vitlab::kernels {

// One image's crop, and where its weight tables lie.
struct CropResizeJob {
  const uint8_t* image = nullptr;  // (H, W, 3) RGB, rows `pitch` bytes apart
  int64_t pitch = 0;
  int32_t top = 0, left = 0;   // the crop's corner in the image
  int32_t row = 0;             // the output image it fills
  int32_t flip = 0;            // mirrored left-right
  // Offsets into CropResizeArgs::ints (first[size], then count[size]) and ::weights
  // ((size, taps)) of the rows' (y) and the columns' (x) tables.
  int64_t y_ints = 0, x_ints = 0, y_weights = 0, x_weights = 0;
  int32_t y_taps = 0, x_taps = 0;
};

struct CropResizeArgs {
  const CropResizeJob* jobs = nullptr;  // on the device
  int32_t count = 0;
  const int32_t* ints = nullptr;  // on the device
  const float* weights = nullptr;  // on the device
  uint8_t* out = nullptr;          // (B, 3, size, size)
  int32_t size = 0;
};
void crop_resize_batch(const CropResizeArgs& args, void* cuda_stream);

}  // namespace vitlab::kernels
