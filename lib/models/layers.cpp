#include "models/layers.h"

#include <cmath>

#include "models/fast_linear.h"
#include "models/fused_group_norm.h"

namespace vitlab {

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
  if (!training || rate <= 0.0) return x;
  const double keep = 1.0 - rate;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);  // one draw per sample: (B, 1, 1, ...)
  auto mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask / keep;
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, double dropout) : dropout(dropout) {
  fc1 = register_module("fc1", torch::nn::Linear(width, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = linear_act(x, fc1, Activation::kGelu, fast_linears);
  h = torch::dropout(h, dropout, is_training());
  return torch::dropout(linear_act(h, fc2, Activation::kNone, fast_linears), dropout,
                        is_training());
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

torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto padding = same_padding_2d(x, kernel, stride);
  if (padding == std::array<int64_t, 4>{}) return x;
  return torch::constant_pad_nd(x, padding);
}

StdConv2dImpl::StdConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                             ConvPadding padding, double eps)
    : kernel(kernel), stride(stride), padding(padding), eps(eps) {
  weight = register_parameter("weight", torch::empty({out, in, kernel, kernel}));
  // He (fan_out, ReLU) init as timm's ResNetV2.
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor StdConv2dImpl::forward(const torch::Tensor& x) {
  // Standardise in fp32 even under autocast: the variance of small filters underflows in bf16.
  auto w = weight.to(torch::kFloat);
  auto flat = w.reshape({w.size(0), -1});  // (out, in*kh*kw)
  auto var_mean = torch::var_mean(flat, /*dim=*/{1}, /*unbiased=*/false, /*keepdim=*/true);
  auto standardized =
      ((flat - std::get<1>(var_mean)) / torch::sqrt(std::get<0>(var_mean) + eps)).reshape_as(w);
  // Channels-last activations (the CUDA fast path) want channels-last filters for cuDNN.
  if (x.is_cuda() && x.is_contiguous(at::MemoryFormat::ChannelsLast))
    standardized = standardized.contiguous(at::MemoryFormat::ChannelsLast);
  if (padding == ConvPadding::kSame) {
    return torch::conv2d(pad_same(x, kernel, stride), standardized.to(x.scalar_type()), {}, stride);
  }
  return torch::conv2d(x, standardized.to(x.scalar_type()), {}, stride, (kernel - 1) / 2);
}

GroupNormActImpl::GroupNormActImpl(int64_t channels, bool relu, bool feeds_conv)
    : groups(32), relu(relu), feeds_conv(feeds_conv) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  while (channels % groups != 0) groups /= 2;  // tiny test widths: largest power of 2 dividing
}

torch::Tensor GroupNormActImpl::forward(const torch::Tensor& x) {
  return fused_group_norm_act(x, groups, weight, bias, 1e-5, relu, feeds_conv, fused_kernels);
}

std::pair<torch::Tensor, torch::Tensor> GroupNormActImpl::forward_add(const torch::Tensor& x,
                                                                      const torch::Tensor& delta) {
  return fused_add_group_norm_act(x, delta, groups, weight, bias, 1e-5, relu, feeds_conv,
                                  fused_kernels);
}

void use_group_norm_kernels(torch::nn::Module& module, bool on) {
  for (const auto& child : module.modules(/*include_self=*/true)) {
    if (auto norm = std::dynamic_pointer_cast<GroupNormActImpl>(child)) norm->fused_kernels = on;
  }
}

void trunc_normal_(torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  // Rejection sampling: draw, then redraw the values outside [a, b] until none is left. Exact for
  // the truncated normal, and one vectorised pass for ViT's std 0.02 (bounds at 100 std). The
  // inverse-CDF method (timm's) needs erfinv, which ATen runs element by element on the CPU: it
  // took a minute to initialise the factory's large presets.
  const double a = -2.0, b = 2.0;
  t.normal_(0.0, std);
  for (int round = 0; round < 10000; ++round) {
    const auto outside = t.lt(a).logical_or_(t.gt(b));
    if (!outside.any().item<bool>()) return;
    t.copy_(torch::where(outside, torch::empty_like(t).normal_(0.0, std), t));
  }
  t.clamp_(a, b);  // only for absurd std (acceptance below ~1e-4 per draw)
}

}  // namespace vitlab
