#include "ops/layer_norm.h"

#include "core/compat.h"
#include "ops/fast_kernels.h"
#include "ops/kernel_tensors.h"
#if VITLAB_WITH_CUDA
#include "ops/cuda/fused_norm_kernels.h"
#include "ops/cuda/linear_grad_kernels.h"
#include "ops/linear.h"
#endif

namespace vitlab::ops {
namespace {

// ATen's form of the same function: what the plain path computes.
torch::Tensor aten_layer_norm(const torch::Tensor& x, const LayerNormParams& norm) {
  return torch::layer_norm(x, {x.size(-1)}, norm.weight, norm.bias, norm.eps);
}

}  // namespace

#if VITLAB_WITH_CUDA
namespace {
using kernels::elem_type;
using kernels::kernel_ready;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The output dtype: autocast's (bfloat16) when the output feeds a matmul under autocast.
torch::ScalarType output_dtype(bool feeds_matmul) {
  if (!feeds_matmul) return torch::kFloat;
  // The kernels write float32 or bfloat16; under fp16 autocast the linear layer does the cast.
  const auto autocast = compat::cuda_autocast_dtype();
  return autocast == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
}

constexpr const char* kSlotKey = "bias_grad_slot";

// Forward for both functions: `delta` undefined means LN(x) alone.
// `keep_inputs`: save x and a bf16 delta instead of their float32 sum (see NormUse::stream_saved).
variable_list norm_forward(AutogradContext* ctx, const torch::Tensor& x_in,
                           const torch::Tensor& delta_in, const torch::Tensor& gamma,
                           const torch::Tensor& beta, double eps, torch::ScalarType out_dtype,
                           bool keep_inputs = false) {
  // An unused output's gradient stays undefined (the last block's stream, which only the final
  // norm reads) instead of a materialised zeros tensor that the backward would read.
  ctx->set_materialize_grads(false);
  const auto x = kernel_ready(x_in);
  const auto delta = delta_in.defined() ? kernel_ready(delta_in) : torch::Tensor();
  const int64_t width = x.size(-1), rows = x.numel() / width;
  auto out = torch::empty(x.sizes(), x.options().dtype(out_dtype));
  auto sum = delta.defined() ? torch::empty_like(x) : torch::Tensor();
  auto mean = torch::empty({rows}, x.options()), rstd = torch::empty({rows}, x.options());
  kernels::NormForwardArgs a;
  a.x = x.data_ptr<float>();
  if (delta.defined()) {
    a.delta = delta.data_ptr();
    a.delta_type = elem_type(delta);
    a.sum = sum.data_ptr<float>();
  }
  a.out = out.data_ptr();
  a.out_type = elem_type(out);
  a.gamma = gamma.data_ptr<float>();
  a.beta = beta.data_ptr<float>();
  a.mean = mean.data_ptr<float>();
  a.rstd = rstd.data_ptr<float>();
  a.rows = rows;
  a.width = static_cast<int>(width);
  a.eps = static_cast<float>(eps);
  kernels::norm_forward(a, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const bool delta_bf16 = delta.defined() && delta.scalar_type() == torch::kBFloat16;
  if (keep_inputs && delta_bf16)
    ctx->save_for_backward({x, mean, rstd, gamma, delta});
  else
    ctx->save_for_backward({delta.defined() ? sum : x, mean, rstd, gamma});
  ctx->saved_data["delta_bf16"] = delta_bf16;
  // delta straight from a fast linear layer: the backward sums its gradient for the layer's bias.
  if (delta_bf16) {
    if (auto slot = bias_grad_slot(delta_in))
      ctx->saved_data[kSlotKey] = at::IValue::make_capsule(std::move(slot));
  }
  ctx->saved_data["out_dtype"] = static_cast<int64_t>(out_dtype);
  if (delta.defined()) return {sum, out};
  return {out};
}

// Backward for both: returns (grad x, grad delta, grad gamma, grad beta).
std::array<torch::Tensor, 4> norm_backward(AutogradContext* ctx, const torch::Tensor& grad_sum_in,
                                           const torch::Tensor& grad_out_in) {
  const auto saved = ctx->get_saved_variables();
  const auto &input = saved[0], &mean = saved[1], &rstd = saved[2], &gamma = saved[3];
  const auto out_dtype = static_cast<torch::ScalarType>(ctx->saved_data["out_dtype"].toInt());
  const bool delta_bf16 = ctx->saved_data["delta_bf16"].toBool();
  const int64_t width = input.size(-1), rows = input.numel() / width;
  const auto grad_out = kernel_ready(
      grad_out_in.defined() ? grad_out_in.to(out_dtype)
                            : torch::zeros(input.sizes(), input.options().dtype(out_dtype)));
  const auto grad_sum =
      grad_sum_in.defined() ? kernel_ready(grad_sum_in.to(torch::kFloat)) : torch::Tensor();
  auto grad_input = torch::empty_like(input);
  auto grad_delta = delta_bf16
                        ? torch::empty(input.sizes(), input.options().dtype(torch::kBFloat16))
                        : torch::Tensor();
  const int blocks = kernels::norm_backward_blocks(rows, kernels::sm_count());
  const cudaDeviceProp& props = *at::cuda::getCurrentDeviceProperties();
  c10::intrusive_ptr<BiasGradSlot> slot;
  if (grad_delta.defined() && ctx->saved_data.count(kSlotKey) &&
      kernels::norm_backward_can_sum_delta(static_cast<int>(width),
                                           static_cast<int>(props.sharedMemPerBlockOptin),
                                           static_cast<int>(props.sharedMemPerMultiprocessor)))
    slot = c10::static_intrusive_pointer_cast<BiasGradSlot>(ctx->saved_data[kSlotKey].toCapsule());
  auto partial = torch::empty({slot ? 3 : 2, blocks, width}, input.options());
  kernels::NormBackwardArgs a;
  a.grad_out = grad_out.data_ptr();
  a.grad_out_type = elem_type(grad_out);
  a.grad_sum = grad_sum.defined() ? grad_sum.data_ptr<float>() : nullptr;
  a.input = input.data_ptr<float>();
  if (saved.size() > 4) a.input_delta = saved[4].data_ptr();  // saved by keep_inputs
  a.mean = mean.data_ptr<float>();
  a.rstd = rstd.data_ptr<float>();
  a.gamma = gamma.data_ptr<float>();
  a.grad_input = grad_input.data_ptr<float>();
  a.grad_delta = grad_delta.defined() ? grad_delta.data_ptr() : nullptr;
  a.partial_gamma = partial[0].data_ptr<float>();
  a.partial_beta = partial[1].data_ptr<float>();
  if (slot) a.partial_delta = partial[2].data_ptr<float>();
  a.rows = rows;
  a.width = static_cast<int>(width);
  kernels::norm_backward(a, blocks, kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (slot) {  // the linear's bias gradient: summed in float32, rounded to bf16, as its own kernel
    slot->sums = torch::empty({width}, input.options());
    kernels::finish_column_sums(a.partial_delta, 1, blocks, static_cast<int>(width),
                                slot->sums.data_ptr<float>(), kernels::current_stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    slot->grad = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(
        grad_delta.getIntrusivePtr());
    slot->grad_version = grad_delta._version();
    slot->stream = at::cuda::getCurrentCUDAStream().unwrap();
  }
  const auto gamma_beta = partial.narrow(0, 0, 2).sum(1);  // (2, width)
  return {grad_input, grad_delta.defined() ? grad_delta : grad_input, gamma_beta[0], gamma_beta[1]};
}

struct LayerNormFunction : torch::autograd::Function<LayerNormFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                               int64_t out_dtype) {
    return norm_forward(ctx, x, torch::Tensor(), gamma, beta, eps,
                        static_cast<torch::ScalarType>(out_dtype));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto g = norm_backward(ctx, torch::Tensor(), grads[0]);
    return {g[0], g[2], g[3], torch::Tensor(), torch::Tensor()};
  }
};

struct AddLayerNormFunction : torch::autograd::Function<AddLayerNormFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& delta, const torch::Tensor& gamma,
                               const torch::Tensor& beta, double eps, int64_t out_dtype,
                               bool keep_inputs) {
    return norm_forward(ctx, x, delta, gamma, beta, eps, static_cast<torch::ScalarType>(out_dtype),
                        keep_inputs);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto g = norm_backward(ctx, grads[0], grads[1]);
    return {g[0], g[1], g[2], g[3], torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

bool cuda_kernels_apply(const torch::Tensor& x, const LayerNormParams& norm) {
  const auto affine = [&](const torch::Tensor& p) {
    return p.defined() && p.scalar_type() == torch::kFloat && p.dim() == 1 &&
           p.size(0) == x.size(-1);
  };
  return x.scalar_type() == torch::kFloat && x.dim() >= 2 &&
         kernels::norm_width_supported(x.size(-1)) &&
         kernels::norm_backward_fits(
             static_cast<int>(x.size(-1)),
             static_cast<int>(at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin)) &&
         affine(norm.weight) && affine(norm.bias);
}

torch::Tensor layer_norm_kernel(const torch::Tensor& x, const LayerNormParams& norm,
                                NormUse use) {
  return LayerNormFunction::apply(x, norm.weight, norm.bias, norm.eps,
                                  static_cast<int64_t>(output_dtype(use.feeds_matmul)))[0];
}

std::pair<torch::Tensor, torch::Tensor> add_layer_norm_kernel(const torch::Tensor& x,
                                                              const torch::Tensor& delta,
                                                              const LayerNormParams& norm,
                                                              NormUse use) {
  auto outputs = AddLayerNormFunction::apply(
      x, delta, norm.weight, norm.bias, norm.eps,
      static_cast<int64_t>(output_dtype(use.feeds_matmul)), use.stream_saved);
  return {outputs[0], outputs[1]};
}
}  // namespace
#endif

bool layer_norm_kernels_apply(const torch::Tensor& x, const LayerNormParams& norm) {
#if VITLAB_WITH_CUDA
  return fast_kernels_for(x) && cuda_kernels_apply(x, norm);
#else
  (void)x, (void)norm;
  return false;
#endif
}

torch::Tensor layer_norm(const torch::Tensor& x, const LayerNormParams& norm, NormUse use) {
#if VITLAB_WITH_CUDA
  if (layer_norm_kernels_apply(x, norm)) return layer_norm_kernel(x, norm, use);
#endif
  (void)use;
  return aten_layer_norm(x, norm);
}

std::pair<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& stream,
                                                       const torch::Tensor& branch,
                                                       const LayerNormParams& norm,
                                                       NormUse use) {
  if (!branch.defined()) return {stream, layer_norm(stream, norm, use)};
#if VITLAB_WITH_CUDA
  const bool branch_ok =
      branch.sizes() == stream.sizes() && branch.device() == stream.device() &&
      (branch.scalar_type() == torch::kFloat || branch.scalar_type() == torch::kBFloat16);
  if (branch_ok && layer_norm_kernels_apply(stream, norm))
    return add_layer_norm_kernel(stream, branch, norm, use);
#endif
  auto sum = stream + branch;
  return {sum, aten_layer_norm(sum, norm)};
}

}  // namespace vitlab::ops
