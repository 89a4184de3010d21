#include "models/layers.h"

#include <cmath>

#include "ops/group_norm.h"
#include "ops/linear.h"

namespace vitlab {

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
  if (!training || rate <= 0.0) return x;
  const double keep = 1.0 - rate;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);  // one draw per sample: (B, 1, 1, ...)
  auto mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask / keep;
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) {
  weight = register_parameter("weight", new_parameter({out, in}));
  if (with_bias) bias = register_parameter("bias", new_parameter({out}));
  default_init_(weight, bias);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x, ops::Activation act) {
  return ops::linear(x, weight, bias, act);
}

LayerNormImpl::LayerNormImpl(int64_t width, double eps) : eps(eps) {
  weight = register_parameter("weight", new_parameter({width}));
  bias = register_parameter("bias", new_parameter({width}));
  constant_(weight, 1.0);
  constant_(bias, 0.0);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x, ops::NormUse use) {
  return ops::layer_norm(x, {weight, bias, eps}, use);
}

std::pair<torch::Tensor, torch::Tensor> LayerNormImpl::forward(const Residual& z, ops::NormUse use) {
  return ops::add_layer_norm(z.stream, z.branch, {weight, bias, eps}, use);
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, double dropout) : dropout(dropout) {
  fc1 = register_module("fc1", Linear(width, hidden));
  fc2 = register_module("fc2", Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = fc1->forward(x, ops::Activation::kGelu);  // (B, T, M)
  h = torch::dropout(h, dropout, is_training());
  return torch::dropout(fc2->forward(h), dropout, is_training());  // (B, T, D)
}

std::pair<int64_t, int64_t> same_padding(int64_t size, int64_t kernel, int64_t stride,
                                         int64_t dilation) {
  const int64_t out = (size + stride - 1) / stride;
  const int64_t total =
      std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return {total / 2, total - total / 2};
}

std::array<int64_t, 4> same_padding_2d(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto [top, bottom] = same_padding(x.size(-2), kernel, stride);
  const auto [left, right] = same_padding(x.size(-1), kernel, stride);
  return {left, right, top, bottom};
}

StdConv2dImpl::StdConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                             ConvPadding padding, double eps)
    : kernel(kernel), stride(stride), padding(padding), eps(eps) {
  weight = register_parameter("weight", new_parameter({out, in, kernel, kernel}));
  kaiming_normal_fan_out_(weight);  // timm's ResNetV2
}

ops::Conv2dSpec StdConv2dImpl::spec(const torch::Tensor& x) const {
  // Standardise in fp32 even under autocast: the variance of small filters underflows in bf16.
  auto w = weight.to(torch::kFloat);
  auto flat = w.reshape({w.size(0), -1});  // (out, in*kh*kw)
  auto var_mean = torch::var_mean(flat, /*dim=*/{1}, /*unbiased=*/false, /*keepdim=*/true);
  ops::Conv2dSpec s;
  s.weight =
      ((flat - std::get<1>(var_mean)) / torch::sqrt(std::get<0>(var_mean) + eps)).reshape_as(w);
  // Channels-last activations (the CUDA fast path) want channels-last filters for cuDNN.
  if (x.is_cuda() && x.is_contiguous(at::MemoryFormat::ChannelsLast))
    s.weight = s.weight.contiguous(at::MemoryFormat::ChannelsLast);
  s.stride = stride;
  if (padding == ConvPadding::kSame)
    s.explicit_padding = same_padding_2d(x, kernel, stride);
  else
    s.padding = (kernel - 1) / 2;
  return s;
}

torch::Tensor StdConv2dImpl::forward(const torch::Tensor& x) {
  return ops::conv2d(x, spec(x));
}

GroupNormActImpl::GroupNormActImpl(int64_t channels, bool relu, bool feeds_conv)
    : groups(32), relu(relu), feeds_conv(feeds_conv) {
  weight = register_parameter("weight", new_parameter({channels}));
  bias = register_parameter("bias", new_parameter({channels}));
  constant_(weight, 1.0);
  constant_(bias, 0.0);
  while (channels % groups != 0) groups /= 2;  // tiny test widths: largest power of 2 dividing
}

torch::Tensor GroupNormActImpl::forward(const torch::Tensor& x) {
  return ops::group_norm_act(x, groups, weight, bias, 1e-5, relu, feeds_conv);
}

std::pair<torch::Tensor, torch::Tensor> GroupNormActImpl::forward(const Residual& x) {
  return ops::add_group_norm_act(x.stream, x.branch, groups, weight, bias, 1e-5, relu, feeds_conv);
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> GroupNormActImpl::forward(
    const Residual& x, const std::vector<StdConv2d>& convs) {
  std::vector<ops::Conv2dSpec> specs;
  for (const auto& conv : convs) specs.push_back(conv->spec(x.stream));
  return ops::add_group_norm_act_conv(x.stream, x.branch, groups, weight, bias, 1e-5, relu, specs);
}

}  // namespace vitlab
