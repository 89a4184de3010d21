#include "models/fast_linear.h"

#include "core/compat.h"
#include "models/kernel_tensors.h"
#include "models/layers.h"
#if VITLAB_WITH_CUDA
#include "models/cuda/linear_grad_kernels.h"
#endif

namespace vitlab {
namespace {

torch::Tensor aten_linear_act(const torch::Tensor& x, const torch::nn::Linear& layer,
                              Activation act) {
  auto y = linear(layer, x);
  return act == Activation::kGelu ? torch::gelu(y) : y;
}

}  // namespace

#if VITLAB_WITH_CUDA
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Forward as autocast runs it (inputs, weight and bias cast to bfloat16, one at::linear); the
// backward computes what autograd would from those casts, in the same dtypes.
struct LinearActFunction : torch::autograd::Function<LinearActFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t activation) {
    const auto x16 = x.to(torch::kBFloat16), w16 = weight.to(torch::kBFloat16);
    auto h = torch::linear(x16, w16, bias.to(torch::kBFloat16));
    const bool gelu = activation == static_cast<int64_t>(Activation::kGelu);
    ctx->save_for_backward({x16, w16, gelu ? h : torch::Tensor()});
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias.scalar_type());
    return {gelu ? torch::gelu(h) : h};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x16 = saved[0], &w16 = saved[1], &h = saved[2];
    const int64_t out_features = w16.size(0), in_features = w16.size(1);
    auto grad = kernels::kernel_ready(grads[0].to(torch::kBFloat16)).reshape({-1, out_features});
    const int64_t rows = grad.size(0);
    const int chunks = kernels::column_sum_chunks(rows, out_features, kernels::sm_count());
    auto partial = torch::empty({chunks, out_features}, grad.options().dtype(torch::kFloat));
    kernels::ColumnSumArgs a;
    a.partial = partial.data_ptr<float>();
    a.rows = rows;
    a.cols = static_cast<int>(out_features);
    if (h.defined()) {  // GELU: grad becomes grad * gelu'(h), summed in the same pass
      const auto h2 = kernels::kernel_ready(h).reshape({-1, out_features});
      auto grad_h = torch::empty_like(grad);
      a.grad = grad.data_ptr();
      a.input = h2.data_ptr();
      a.grad_input = grad_h.data_ptr();
      kernels::gelu_backward_column_sums(a, chunks, kernels::current_stream());
      grad = grad_h;
    } else {
      a.grad = grad.data_ptr();
      kernels::column_sums(a, chunks, kernels::current_stream());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const auto dtype = [&](const char* key) {
      return static_cast<torch::ScalarType>(ctx->saved_data[key].toInt());
    };
    // The bias gradient as autocast's path has it: summed in float32, rounded to the bf16 bias.
    auto grad_bias = partial.sum(0).to(torch::kBFloat16).to(dtype("bias_dtype"));
    auto grad_weight = grad.t().mm(x16.reshape({-1, in_features})).to(dtype("weight_dtype"));
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = grad.mm(w16).reshape(x16.sizes()).to(dtype("x_dtype"));
    return {grad_x, grad_weight, grad_bias, torch::Tensor()};
  }
};
}  // namespace

bool fast_linear_applies(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return x.is_cuda() && x.dim() >= 2 && compat::cuda_autocast_dtype() == torch::kBFloat16 &&
         layer->bias.defined() && kernels::column_sum_supported(layer->weight.size(0)) &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16);
}

torch::Tensor linear_act(const torch::Tensor& x, const torch::nn::Linear& layer, Activation act,
                         bool fast) {
  if (!fast || !fast_linear_applies(x, layer)) return aten_linear_act(x, layer, act);
  return LinearActFunction::apply(x, layer->weight, layer->bias, static_cast<int64_t>(act))[0];
}

#else  // LibTorch without CUDA: ATen only.

bool fast_linear_applies(const torch::Tensor&, const torch::nn::Linear&) {
  return false;
}

torch::Tensor linear_act(const torch::Tensor& x, const torch::nn::Linear& layer, Activation act,
                         bool) {
  return aten_linear_act(x, layer, act);
}

#endif

}  // namespace vitlab
