// crop_resize (data/crop_transforms.h) on the GPU, for a batch of images already decoded on the
// device (the nvJPEG decoder's): each crop of each image resized into one row of the batch, with
// crop_resize's pixels bit for bit (one kernel for the batch, data/cuda/crop_resize_kernels.h).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/crop_transforms.h"

namespace vitlab {

struct DeviceCrop {
  const uint8_t* image = nullptr;  // (H, W, 3) uint8 RGB on the device, rows `pitch` bytes apart
  int64_t height = 0, width = 0, pitch = 0;
  CropBox box;                     // inside the image
  bool flip = false;               // mirrored left-right after the resize
  int64_t row = 0;                 // the row of `out` it fills
};

// Writes each crop, resized to S x S, into its row of `out` ((B, 3, S, S) uint8 on a CUDA device)
// on the current stream. The images must stay unchanged until the stream has run it. Throws in
// a build without CUDA.
void crop_resize_on_device(const std::vector<DeviceCrop>& crops, torch::Tensor& out);

// The same for (H, W, 3) uint8 images held in tensors on the device: (B, 3, S, S), row i from
// images[i] (the tests' entry).
torch::Tensor crop_resize_on_device(const std::vector<torch::Tensor>& images,
                                    const std::vector<CropBox>& boxes,
                                    const std::vector<bool>& flips, int64_t size);

}  // namespace vitlab
