#include "ops/group_norm.h"

#include <algorithm>

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

// The separate ops: the norm (through add_group_norm_act, which may still use the kernels), then
// each convolution on its output.
std::pair<torch::Tensor, std::vector<torch::Tensor>> aten_add_group_norm_act_conv(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, const std::vector<Conv2dSpec>& convs) {
  const auto [sum, out] = add_group_norm_act(x, delta, groups, weight, bias, eps, relu, true);
  std::vector<torch::Tensor> ys;
  for (const auto& c : convs) ys.push_back(conv2d(out, c));
  return {sum, ys};
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

// The launch arguments both the forward and the recomputation fill alike.
kernels::GroupNormForwardArgs forward_args(const torch::Tensor& x, const torch::Tensor& out,
                                           const torch::Tensor& weight, const torch::Tensor& bias,
                                           const torch::Tensor& mean, const torch::Tensor& rstd,
                                           bool relu) {
  kernels::GroupNormForwardArgs a;
  a.x = x.data_ptr();
  a.x_type = elem_type(x);
  a.out = out.data_ptr();
  a.out_type = elem_type(out);
  a.gamma = weight.data_ptr<float>();
  a.beta = bias.data_ptr<float>();
  a.mean = mean.data_ptr<float>();
  a.rstd = rstd.data_ptr<float>();
  a.samples = x.size(0);
  a.pixels = x.size(2) * x.size(3);
  a.channels = static_cast<int>(x.size(1));
  a.groups = static_cast<int>(mean.size(1));
  a.relu = relu;
  return a;
}

// Forward of the functions: `delta` undefined means GN(x) alone; else (x + delta, GN(x + delta)).
// Saves (what was normalised, mean, rstd, weight, bias), then `also_saved`.
variable_list group_norm_forward(AutogradContext* ctx, const torch::Tensor& x_in,
                                 const torch::Tensor& delta_in, const torch::Tensor& weight,
                                 const torch::Tensor& bias, int64_t groups, double eps, bool relu,
                                 int64_t out_dtype, const variable_list& also_saved = {}) {
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
  auto a = forward_args(x, out, weight, bias, mean, rstd, relu);
  if (delta.defined()) {
    a.delta = delta.data_ptr();
    a.sum = sum.data_ptr();
  }
  a.partial = partial.data_ptr<float>();
  a.eps = static_cast<float>(eps);
  kernels::group_norm_forward(a, launch, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // The output is not saved: the ReLU mask is recomputed from the input (the next convolution
  // keeps the output as its input, or add_group_norm_act_conv recomputes it).
  variable_list saved{delta.defined() ? sum : x, mean, rstd, weight, bias};
  saved.insert(saved.end(), also_saved.begin(), also_saved.end());
  ctx->save_for_backward(saved);
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

// A norm's output recomputed for its convolutions' backward pass (add_group_norm_act_conv): the
// same bits as the forward wrote, from what the norm saved.
torch::Tensor recompute_output(AutogradContext* ctx) {
  const auto saved = ctx->get_saved_variables();
  const auto &x = saved[0], &mean = saved[1], &rstd = saved[2];
  const auto out_dtype = static_cast<torch::ScalarType>(ctx->saved_data["out_dtype"].toInt());
  auto out = torch::empty(
      x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast).dtype(out_dtype));
  const auto a =
      forward_args(x, out, saved[3], saved[4], mean, rstd, ctx->saved_data["relu"].toBool());
  const auto launch = kernels::group_norm_launch(x.size(0), a.pixels, x.size(1), kernels::sm_count());
  kernels::group_norm_apply(a, launch, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// (x + delta if delta is defined, conv0(out), conv1(out) if w1 is defined) for out = GN(x
// [+ delta]). `conv` holds each convolution's (stride, padding). Saved: the norm's, and the
// weights; not out.
struct AddGroupNormActConvFunction : torch::autograd::Function<AddGroupNormActConvFunction> {
  // delta and w1 are optional: autograd takes an undefined tensor for a variable.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const c10::optional<torch::Tensor>& delta,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& w0, const c10::optional<torch::Tensor>& w1,
                               int64_t groups, double eps, bool relu, int64_t out_dtype,
                               std::array<int64_t, 4> conv) {
    const auto d = delta.value_or(torch::Tensor()), w = w1.value_or(torch::Tensor());
    auto norm = group_norm_forward(ctx, x, d, weight, bias, groups, eps, relu, out_dtype, {w0, w});
    ctx->saved_data["conv"] = std::vector<int64_t>(conv.begin(), conv.end());
    ctx->saved_data["has_sum"] = d.defined();
    const auto& out = norm.back();  // (B, C, H, W) channels-last, freed on return
    variable_list outputs;
    if (d.defined()) outputs.push_back(norm[0]);
    outputs.push_back(torch::conv2d(out, w0, {}, conv[0], conv[1]));
    if (w.defined()) outputs.push_back(torch::conv2d(out, w, {}, conv[2], conv[3]));
    return outputs;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto conv = ctx->saved_data["conv"].toIntVector();
    const bool has_sum = ctx->saved_data["has_sum"].toBool();
    const auto grad_sum = has_sum ? grads[0] : torch::Tensor();
    // The convolutions' backward as autograd's own (ConvolutionBackward0) runs it, on the
    // recomputed input; their input gradients add up as autograd would add them.
    auto out = recompute_output(ctx);
    torch::Tensor grad_out, grad_w[2];
    for (int i = 0; i < 2 && saved[5 + i].defined(); ++i) {
      const auto& grad_y = grads[(has_sum ? 1 : 0) + i];
      if (!grad_y.defined()) continue;
      const int64_t stride = conv[2 * i], padding = conv[2 * i + 1];
      auto g = at::convolution_backward(grad_y, out, saved[5 + i], c10::nullopt, {stride, stride},
                                        {padding, padding}, {1, 1}, false, {0, 0}, 1,
                                        {true, true, false});
      grad_out = grad_out.defined() ? grad_out + std::get<0>(g) : std::get<0>(g);
      grad_w[i] = std::get<1>(g);
    }
    out.reset();
    const auto g = group_norm_backward(ctx, grad_sum, grad_out);
    const auto grad_delta = has_sum ? g[0] : torch::Tensor();
    return {g[0],           grad_delta,      g[1],           g[2],
            grad_w[0],      grad_w[1],       torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The kernels add a residual branch of x's shape, dtype and layout (else ATen adds).
bool delta_fits(const torch::Tensor& x, const torch::Tensor& delta) {
  return delta.sizes() == x.sizes() && delta.device() == x.device() &&
         delta.scalar_type() == x.scalar_type() &&
         delta.is_contiguous(at::MemoryFormat::ChannelsLast);
}

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
  const auto out_dtype = output_dtype(x, feeds_conv);
  if (!delta_fits(x, delta) || !out_dtype || !group_norm_kernels_apply(x, groups, weight, bias))
    return aten_add_group_norm_act(x, delta, groups, weight, bias, eps, relu);
  auto outputs = AddGroupNormActFunction::apply(x, delta, weight, bias, groups, eps, relu,
                                                static_cast<int64_t>(*out_dtype));
  return {outputs[0], outputs[1]};
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> add_group_norm_act_conv(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, const std::vector<Conv2dSpec>& convs) {
  TORCH_CHECK(convs.size() == 1 || convs.size() == 2,
              "vitlab: add_group_norm_act_conv takes one or two convolutions");
  const auto out_dtype = output_dtype(x, /*feeds_conv=*/true);
  const bool fits = std::none_of(convs.begin(), convs.end(),
                                 [](const Conv2dSpec& c) { return c.pads_explicitly(); }) &&
                    (!delta.defined() || delta_fits(x, delta)) && out_dtype &&
                    group_norm_kernels_apply(x, groups, weight, bias);
  if (!fits) return aten_add_group_norm_act_conv(x, delta, groups, weight, bias, eps, relu, convs);
  // The weights' cast to the output's dtype stays outside the function, in autograd's graph, as
  // the convolution's own cast would be.
  const auto w0 = convs[0].weight.to(*out_dtype);
  const auto w1 = convs.size() > 1 ? c10::optional<torch::Tensor>(convs[1].weight.to(*out_dtype))
                                   : c10::nullopt;
  const auto residual = delta.defined() ? c10::optional<torch::Tensor>(delta) : c10::nullopt;
  const std::array<int64_t, 4> conv{convs[0].stride, convs[0].padding,
                                    convs.size() > 1 ? convs[1].stride : 0,
                                    convs.size() > 1 ? convs[1].padding : 0};
  auto outputs = AddGroupNormActConvFunction::apply(
      x, residual, weight, bias, w0, w1, groups, eps, relu, static_cast<int64_t>(*out_dtype), conv);
  if (!delta.defined()) return {x, outputs};
  const auto sum = outputs.front();
  return {sum, std::vector<torch::Tensor>(outputs.begin() + 1, outputs.end())};
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

std::pair<torch::Tensor, std::vector<torch::Tensor>> add_group_norm_act_conv(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, const std::vector<Conv2dSpec>& convs) {
  TORCH_CHECK(convs.size() == 1 || convs.size() == 2,
              "vitlab: add_group_norm_act_conv takes one or two convolutions");
  return aten_add_group_norm_act_conv(x, delta, groups, weight, bias, eps, relu, convs);
}

#endif

}  // namespace vitlab::ops
