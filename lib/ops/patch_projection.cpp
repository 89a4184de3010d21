#include "ops/patch_projection.h"

#include "core/compat.h"
#include "ops/fast_kernels.h"

namespace vitlab::ops {
namespace {

torch::Tensor as_matmul(const torch::Tensor& images, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  const int64_t p = weight.size(-1), D = weight.size(0);
  const int64_t B = images.size(0), C = images.size(1);
  const int64_t gh = images.size(2) / p, gw = images.size(3) / p;  // the conv drops the remainder
  auto x = images;
  // Cast before the layout copy, as the convolution would under autocast.
  if (const auto dtype = compat::cuda_autocast_dtype(); dtype && images.is_cuda()) x = x.to(*dtype);
  x = x.narrow(2, 0, gh * p)
          .narrow(3, 0, gw * p)
          .reshape({B, C, gh, p, gw, p})
          .permute({0, 2, 4, 1, 3, 5})        // (B, gh, gw, C, p, p)
          .reshape({B, gh * gw, C * p * p});  // (B, N, C p p), row-major over the grid
  return torch::linear(x, weight.reshape({D, C * p * p}), bias);  // (B, N, D)
}

}  // namespace

torch::Tensor patch_projection(const torch::Tensor& images, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
  const int64_t p = weight.size(-1);
  if (fast_kernels_for(images) && p > 1) return as_matmul(images, weight, bias);
  auto x = torch::conv2d(images, weight, bias, p);  // (B, D, gh, gw)
  return x.flatten(2).transpose(1, 2);  // (B, N, D)
}

}  // namespace vitlab::ops
