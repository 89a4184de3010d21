// Building blocks shared by the ViT and ResNetV2 models.
#pragma once
#include <torch/torch.h>

#include <array>

#include "config/model_config.h"

namespace vitlab {

// Stochastic depth: drops the whole residual branch per sample with probability `rate` during
// training and rescales the kept ones by 1/(1-rate).
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);

// y = x W^T + b through at::linear. torch::nn::Linear::forward (LibTorch's C++ functional) does a
// matmul and then `out += bias` for 3-D inputs: under bf16 autocast that add mixes a bf16 output
// with the fp32 bias in a slow casting kernel, and cuBLASLt's fused bias epilogue is never used. On
// an H100 that was 19% of ViT-B/16's train step (vitlab bench --profile, 2026-11-26).
inline torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return torch::linear(x, layer->weight, layer->bias);
}

// Transformer MLP: fc1 -> GELU (exact erf form, as timm and the paper) -> dropout -> fc2 ->
// dropout.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t width, int64_t hidden, double dropout);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  double dropout;
  bool fast_linears = false;  // the CUDA fast path's linear backward (models/fast_linear.h)
};
TORCH_MODULE(Mlp);

// TensorFlow "SAME" padding for a kernel/stride on an input size: (before, after).
std::pair<int64_t, int64_t> same_padding(int64_t size, int64_t kernel, int64_t stride,
                                         int64_t dilation = 1);
// TF SAME padding of a (B, C, H, W) tensor's map, as (left, right, top, bottom) (the order of
// torch::constant_pad_nd): for the convolutions and vit_jax's stem max-pool.
std::array<int64_t, 4> same_padding_2d(const torch::Tensor& x, int64_t kernel, int64_t stride);
// Pads (B, C, H, W) with zeros for TF SAME (the convolutions).
torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride);

// Convolution with weight standardisation (BiT): each output filter is normalised to zero mean
// and unit variance over (in, kh, kw) before the convolution. No bias.
struct StdConv2dImpl : torch::nn::Module {
  StdConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, ConvPadding padding,
                double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  int64_t kernel, stride;
  ConvPadding padding;
  double eps;
};
TORCH_MODULE(StdConv2d);

// GroupNorm (32 groups, eps 1e-5 as timm's GroupNormAct) followed by an optional ReLU.
// `feeds_conv`: the output goes straight into a convolution (lets the CUDA kernels write bf16).
struct GroupNormActImpl : torch::nn::Module {
  GroupNormActImpl(int64_t channels, bool relu, bool feeds_conv);
  torch::Tensor forward(const torch::Tensor& x);
  // (x + delta, forward(x + delta)), the add inside the norm's kernels on the fast path.
  std::pair<torch::Tensor, torch::Tensor> forward_add(const torch::Tensor& x,
                                                      const torch::Tensor& delta);
  torch::Tensor weight, bias;
  int64_t groups;
  bool relu, feeds_conv;
  bool fused_kernels = false;  // the CUDA fast path's kernels (models/fused_group_norm.h)
};
TORCH_MODULE(GroupNormAct);

// Turns the GroupNorm kernels on or off in every GroupNormAct under `module`.
void use_group_norm_kernels(torch::nn::Module& module, bool on);

// Normal(0, std) truncated to [-2, 2] (absolute bounds, as timm's trunc_normal_ defaults).
void trunc_normal_(torch::Tensor& t, double std);

}  // namespace vitlab
