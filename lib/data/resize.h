// Bilinear resizing of uint8 image batches (e.g. 28 -> 56 for higher-resolution fine-tuning).
#pragma once
#include <torch/torch.h>

namespace vitlab {

// (N, C, H, W) uint8 -> (N, C, height, width) uint8, bilinear (align_corners = false, no
// antialiasing), computed in float and rounded back. Works in chunks so a large data set never
// needs a full float copy. Returns `images` itself when the size already matches.
torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width);

}  // namespace vitlab
