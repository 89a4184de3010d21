// Building blocks shared by the ViT and ResNetV2 models.
#pragma once
#include <torch/torch.h>

#include <array>

#include "config/model_config.h"
#include "models/init.h"
#include "ops/conv.h"
#include "ops/layer_norm.h"
#include "ops/linear.h"

namespace vitlab {

// Stochastic depth: drops the whole residual branch per sample with probability `rate` during
// training and rescales the kept ones by 1/(1-rate).
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);

// The residual stream z = stream + branch, kept as two tensors: the add happens inside the next
// norm (ops::add_layer_norm, ops::add_group_norm_act), in its kernel on the CUDA fast path. An
// undefined branch means z = stream.
struct Residual {
  torch::Tensor stream, branch;
  torch::Tensor sum() const { return branch.defined() ? stream + branch : stream; }
};

// y = act(x W^T + b) (timm's and PyTorch's names and initialisation), through ops::linear.
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool with_bias = true);
  torch::Tensor forward(const torch::Tensor& x, ops::Activation act = ops::Activation::kNone);
  torch::Tensor weight, bias;  // (out, in), (out) or undefined
};
TORCH_MODULE(Linear);

// LayerNorm over the last dimension, through ops::layer_norm; `use` says what the caller does with
// the output (the CUDA kernels may write it in bf16 for a linear layer).
struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t width, double eps);
  torch::Tensor forward(const torch::Tensor& x, ops::NormUse use = {});
  // (z, LN(z)) for the residual stream z = z.stream + z.branch, the add inside the norm.
  std::pair<torch::Tensor, torch::Tensor> forward(const Residual& z, ops::NormUse use = {});
  torch::Tensor weight, bias;  // (D)
  double eps;
};
TORCH_MODULE(LayerNorm);

// Transformer MLP: fc1 -> GELU (exact erf form, as timm and the paper) -> dropout -> fc2 ->
// dropout.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t width, int64_t hidden, double dropout);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
  double dropout;
};
TORCH_MODULE(Mlp);

// TensorFlow "SAME" padding for a kernel/stride on an input size: (before, after).
std::pair<int64_t, int64_t> same_padding(int64_t size, int64_t kernel, int64_t stride,
                                         int64_t dilation = 1);
// TF SAME padding of a (B, C, H, W) tensor's map, as (left, right, top, bottom) (the order of
// torch::constant_pad_nd): for the convolutions and vit_jax's stem max-pool.
std::array<int64_t, 4> same_padding_2d(const torch::Tensor& x, int64_t kernel, int64_t stride);

// Convolution with weight standardisation (BiT): each output filter is normalised to zero mean
// and unit variance over (in, kh, kw) before the convolution. No bias.
struct StdConv2dImpl : torch::nn::Module {
  StdConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, ConvPadding padding,
                double eps);
  torch::Tensor forward(const torch::Tensor& x);
  // The convolution for an input like x (its size for SAME padding, its layout): the
  // standardised weight, stride and padding, as ops take it.
  ops::Conv2dSpec spec(const torch::Tensor& x) const;
  torch::Tensor weight;
  int64_t kernel, stride;
  ConvPadding padding;
  double eps;
};
TORCH_MODULE(StdConv2d);

// GroupNorm (32 groups, eps 1e-5 as timm's GroupNormAct) followed by an optional ReLU.
// `feeds_conv`: the output goes straight into a convolution (the CUDA kernels may write bf16).
struct GroupNormActImpl : torch::nn::Module {
  GroupNormActImpl(int64_t channels, bool relu, bool feeds_conv);
  torch::Tensor forward(const torch::Tensor& x);
  // (z, forward(z)) for z = x.stream + x.branch, the add inside the norm (ops/group_norm.h).
  std::pair<torch::Tensor, torch::Tensor> forward(const Residual& x);
  // (z, [conv(forward(z)) for each conv]) when the norm's output goes into these one or two
  // convolutions and nowhere else: the fast path keeps only z for the backward pass
  // (ops::add_group_norm_act_conv).
  std::pair<torch::Tensor, std::vector<torch::Tensor>> forward(const Residual& x,
                                                               const std::vector<StdConv2d>& convs);
  torch::Tensor weight, bias;
  int64_t groups;
  bool relu, feeds_conv;
};
TORCH_MODULE(GroupNormAct);

}  // namespace vitlab
