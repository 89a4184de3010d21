#include "ops/group_norm.h"

#include "core/compat.h"
#include "ops/fast_kernels.h"
#include "ops/kernel_tensors.h"
#if VITLAB_WITH_CUDA
#include "ops/cuda/group_norm_kernels.h"
#endif

namespace vitlab::ops {
namespace {

torch::Tensor aten_group_norm_act(const torch::Tensor& x, int64_t groups,
                                  const torch::Tensor& weight, const torch::Tensor& bias,
                                  double eps, bool relu) {
  auto y = torch::group_norm(x, groups, weight, bias, eps);
  return relu ? torch::relu(y) : y;
}

std::pair<torch::Tensor, torch::Tensor> aten_add_group_norm_act(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu) {
  auto sum = x + delta;
  return {sum, aten_group_norm_act(sum, groups, weight, bias, eps, relu)};
}

}  // namespace

#if VITLAB_WITH_CUDA
namespace {
using kernels::channels_last_ready;
using kernels::elem_type;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The dtype ATen's path would hand on: float32 under autocast (group_norm runs in float32),
// autocast's dtype when a convolution casts it next anyway, the input's dtype without autocast.
c10::optional<torch::ScalarType> output_dtype(const torch::Tensor& x, bool feeds_conv) {
  const auto autocast = compat::cuda_autocast_dtype();
  if (!autocast) return x.scalar_type();
  if (*autocast != torch::kBFloat16) return c10::nullopt;  // fp16 autocast: ATen
  return feeds_conv ? torch::kBFloat16 : torch::kFloat;
}

// Forward of both functions: `delta` undefined means GN(x) alone; else (x + delta, GN(x + delta)).
variable_list group_norm_forward(AutogradContext* ctx, const torch::Tensor& x_in,
                                 const torch::Tensor& delta_in, const torch::Tensor& weight,
                                 const torch::Tensor& bias, int64_t groups, double eps, bool relu,
                                 int64_t out_dtype) {
  // An unused output's gradient stays undefined: materialised, it would be a float zeros tensor
  // in NCHW that the backward then converts (BiT: the sums entering the downsampling blocks and
  // the final norm, 5% of the step on an H200).
  ctx->set_materialize_grads(false);
  const auto x = channels_last_ready(x_in);
  const auto delta = delta_in.defined() ? channels_last_ready(delta_in) : torch::Tensor();
  const int64_t n = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
  const auto launch = kernels::group_norm_launch(n, pixels, c, kernels::sm_count());
  const auto layout = x.options().memory_format(at::MemoryFormat::ChannelsLast);
  auto out = torch::empty(x.sizes(), layout.dtype(static_cast<torch::ScalarType>(out_dtype)));
  auto sum = delta.defined() ? torch::empty(x.sizes(), layout) : torch::Tensor();
  auto mean = torch::empty({n, groups}, x.options().dtype(torch::kFloat));
  auto rstd = torch::empty({n, groups}, x.options().dtype(torch::kFloat));
  auto partial = torch::empty({2, n, launch.splits, c}, x.options().dtype(torch::kFloat));
  kernels::GroupNormForwardArgs a;
  a.x = x.data_ptr();
  a.x_type = elem_type(x);
  if (delta.defined()) {
    a.delta = delta.data_ptr();
    a.sum = sum.data_ptr();
  }
  a.out = out.data_ptr();
  a.out_type = elem_type(out);
  a.gamma = weight.data_ptr<float>();
  a.beta = bias.data_ptr<float>();
  a.mean = mean.data_ptr<float>();
  a.rstd = rstd.data_ptr<float>();
  a.partial = partial.data_ptr<float>();
  a.samples = n;
  a.pixels = pixels;
  a.channels = static_cast<int>(c);
  a.groups = static_cast<int>(groups);
  a.eps = static_cast<float>(eps);
  a.relu = relu;
  kernels::group_norm_forward(a, launch, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // The output is not saved: the ReLU mask is recomputed from the input (the next convolution
  // keeps its own input anyway).
  ctx->save_for_backward({delta.defined() ? sum : x, mean, rstd, weight, bias});
  ctx->saved_data["relu"] = relu;
  ctx->saved_data["out_dtype"] = out_dtype;
  if (delta.defined()) return {sum, out};
  return {out};
}

// Backward of both: (grad of the normalised input (+ grad_sum), grad gamma, grad beta).
std::array<torch::Tensor, 3> group_norm_backward(AutogradContext* ctx,
                                                 const torch::Tensor& grad_sum_in,
                                                 const torch::Tensor& grad_out) {
  const auto saved = ctx->get_saved_variables();
  const auto &x = saved[0], &mean = saved[1], &rstd = saved[2], &weight = saved[3],
             &bias = saved[4];
  const auto out_dtype = static_cast<torch::ScalarType>(ctx->saved_data["out_dtype"].toInt());
  const int64_t n = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
  const auto grad =
      channels_last_ready(grad_out.defined() ? grad_out.to(out_dtype)
                                             : torch::zeros_like(x, x.options().dtype(out_dtype)));
  const auto grad_sum = grad_sum_in.defined() ? channels_last_ready(grad_sum_in.to(x.scalar_type()))
                                              : torch::Tensor();
  const auto launch = kernels::group_norm_launch(n, pixels, c, kernels::sm_count());
  auto grad_x = torch::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast));
  auto partial = torch::empty({2, n, launch.splits, c}, x.options().dtype(torch::kFloat));
  kernels::GroupNormBackwardArgs a;
  a.grad_out = grad.data_ptr();
  a.grad_out_type = elem_type(grad);
  a.x = x.data_ptr();
  a.x_type = elem_type(x);
  a.grad_sum = grad_sum.defined() ? grad_sum.data_ptr() : nullptr;
  a.mean = mean.data_ptr<float>();
  a.rstd = rstd.data_ptr<float>();
  a.gamma = weight.data_ptr<float>();
  a.beta = bias.data_ptr<float>();
  a.grad_x = grad_x.data_ptr();
  a.partial = partial.data_ptr<float>();
  a.samples = n;
  a.pixels = pixels;
  a.channels = static_cast<int>(c);
  a.groups = static_cast<int>(mean.size(1));
  a.relu = ctx->saved_data["relu"].toBool();
  kernels::group_norm_backward(a, launch, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const auto gamma_beta = partial.sum({1, 2});  // (2, C)
  return {grad_x, gamma_beta[0], gamma_beta[1]};
}

struct GroupNormActFunction : torch::autograd::Function<GroupNormActFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t groups, double eps, bool relu, int64_t out_dtype) {
    return group_norm_forward(ctx, x, torch::Tensor(), weight, bias, groups, eps, relu, out_dtype);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto g = group_norm_backward(ctx, torch::Tensor(), grads[0]);
    return {g[0], g[1], g[2], torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// (x + delta, GN(x + delta)): both inputs receive the sum's gradient.
struct AddGroupNormActFunction : torch::autograd::Function<AddGroupNormActFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& delta, const torch::Tensor& weight,
                               const torch::Tensor& bias, int64_t groups, double eps, bool relu,
                               int64_t out_dtype) {
    return group_norm_forward(ctx, x, delta, weight, bias, groups, eps, relu, out_dtype);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto g = group_norm_backward(ctx, grads[0], grads[1]);
    return {g[0],           g[0], g[1], g[2], torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

bool group_norm_kernels_apply(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias) {
  const auto float_param = [&](const torch::Tensor& p) {
    return p.defined() && p.scalar_type() == torch::kFloat && p.device() == x.device() &&
           p.dim() == 1 && p.size(0) == x.size(1);
  };
  return fast_kernels_for(x) && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         kernels::group_norm_shape_supported(x.size(0), x.size(1), groups) && float_param(weight) &&
         float_param(bias);
}

torch::Tensor group_norm_act(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                             const torch::Tensor& bias, double eps, bool relu, bool feeds_conv) {
  if (!group_norm_kernels_apply(x, groups, weight, bias))
    return aten_group_norm_act(x, groups, weight, bias, eps, relu);
  const auto out_dtype = output_dtype(x, feeds_conv);
  if (!out_dtype) return aten_group_norm_act(x, groups, weight, bias, eps, relu);
  return GroupNormActFunction::apply(x, weight, bias, groups, eps, relu,
                                     static_cast<int64_t>(*out_dtype))[0];
}

std::pair<torch::Tensor, torch::Tensor> add_group_norm_act(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, bool feeds_conv) {
  if (!delta.defined()) return {x, group_norm_act(x, groups, weight, bias, eps, relu, feeds_conv)};
  const bool delta_ok = delta.sizes() == x.sizes() && delta.device() == x.device() &&
                        delta.scalar_type() == x.scalar_type() &&
                        delta.is_contiguous(at::MemoryFormat::ChannelsLast);
  const auto out_dtype = output_dtype(x, feeds_conv);
  if (!delta_ok || !out_dtype || !group_norm_kernels_apply(x, groups, weight, bias))
    return aten_add_group_norm_act(x, delta, groups, weight, bias, eps, relu);
  auto outputs = AddGroupNormActFunction::apply(x, delta, weight, bias, groups, eps, relu,
                                                static_cast<int64_t>(*out_dtype));
  return {outputs[0], outputs[1]};
}

#else  // LibTorch without CUDA: ATen only.

bool group_norm_kernels_apply(const torch::Tensor&, int64_t, const torch::Tensor&,
                              const torch::Tensor&) {
  return false;
}

torch::Tensor group_norm_act(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                             const torch::Tensor& bias, double eps, bool relu, bool) {
  return aten_group_norm_act(x, groups, weight, bias, eps, relu);
}

std::pair<torch::Tensor, torch::Tensor> add_group_norm_act(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, bool) {
  if (!delta.defined()) return {x, aten_group_norm_act(x, groups, weight, bias, eps, relu)};
  return aten_add_group_norm_act(x, delta, groups, weight, bias, eps, relu);
}

#endif

}  // namespace vitlab::ops
