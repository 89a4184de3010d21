#include "models/init.h"

#include <cmath>

namespace vitlab {
namespace {
thread_local bool shape_only = false;

bool skip(const torch::Tensor& t) {
  return !t.defined() || t.is_meta();
}
}  // namespace

ShapeOnlyScope::ShapeOnlyScope() : previous_(shape_only) {
  shape_only = true;
}

ShapeOnlyScope::~ShapeOnlyScope() {
  shape_only = previous_;
}

torch::Tensor new_parameter(torch::IntArrayRef shape) {
  return torch::empty(shape, shape_only ? torch::TensorOptions().device(torch::kMeta)
                                        : torch::TensorOptions());
}

void trunc_normal_(torch::Tensor& t, double std) {
  if (skip(t)) return;
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

void normal_(torch::Tensor& t, double mean, double std) {
  if (skip(t)) return;
  torch::NoGradGuard no_grad;
  t.normal_(mean, std);
}

void constant_(torch::Tensor& t, double value) {
  if (skip(t)) return;
  torch::NoGradGuard no_grad;
  t.fill_(value);
}

void default_init_(torch::Tensor& weight, torch::Tensor& bias) {
  if (skip(weight)) return;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (!bias.defined()) return;
  const auto fan_in = std::get<0>(torch::nn::init::_calculate_fan_in_and_fan_out(weight));
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  torch::nn::init::uniform_(bias, -bound, bound);
}

void kaiming_normal_fan_out_(torch::Tensor& weight) {
  if (skip(weight)) return;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
}

}  // namespace vitlab
