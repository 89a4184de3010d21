// The ViT's patch embedding: a patch_size x patch_size convolution with stride patch_size, read out
// as tokens (B, N, D), row-major over the grid.
#pragma once
#include <torch/torch.h>

namespace vitlab::ops {

// On the CUDA fast path (ops/fast_kernels.h) a patch larger than one pixel is projected as one
// matmul over the flattened patches: a stride = kernel convolution is a GEMM, and cuDNN's path
// for it converts layouts on every call (3% of ViT-B/16's step on an H100). A 1x1 projection (the
// hybrid's, on a channels-last feature map) stays a convolution. The same function either way.
// weight (D, C, p, p), bias (D): images (B, C, H, W) -> (B, N, D).
torch::Tensor patch_projection(const torch::Tensor& images, const torch::Tensor& weight,
                               const torch::Tensor& bias);

}  // namespace vitlab::ops
