#include "ops/max_pool.h"

#include "ops/fast_kernels.h"
#include "ops/kernel_tensors.h"
#if VITLAB_WITH_CUDA
#include "ops/cuda/max_pool_kernels.h"
#endif

namespace vitlab::ops {
namespace {

torch::Tensor aten_padded_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride,
                                   const Padding2d& padding, double pad_value) {
  const bool padded = padding[0] || padding[1] || padding[2] || padding[3];
  auto input = padded ? torch::constant_pad_nd(x, {padding[0], padding[1], padding[2], padding[3]},
                                               pad_value)
                      : x;
  return torch::max_pool2d(input, kernel, stride);
}

}  // namespace

#if VITLAB_WITH_CUDA
namespace {
using kernels::channels_last_ready;
using kernels::elem_type;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::MaxPoolShape pool_shape(const torch::Tensor& x, int64_t kernel, int64_t stride,
                                 const Padding2d& padding) {
  kernels::MaxPoolShape s;
  s.samples = x.size(0);
  s.channels = static_cast<int>(x.size(1));
  s.height = static_cast<int>(x.size(2));
  s.width = static_cast<int>(x.size(3));
  s.kernel = static_cast<int>(kernel);
  s.stride = static_cast<int>(stride);
  s.pad_left = static_cast<int>(padding[0]);
  s.pad_top = static_cast<int>(padding[2]);
  s.out_height = static_cast<int>((x.size(2) + padding[2] + padding[3] - kernel) / stride + 1);
  s.out_width = static_cast<int>((x.size(3) + padding[0] + padding[1] - kernel) / stride + 1);
  return s;
}

torch::Tensor channels_last_empty(torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  return torch::empty(sizes, options.memory_format(at::MemoryFormat::ChannelsLast));
}

struct PaddedMaxPoolFunction : torch::autograd::Function<PaddedMaxPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x_in, int64_t kernel,
                               int64_t stride, int64_t left, int64_t right, int64_t top,
                               int64_t bottom, double pad_value) {
    const auto x = channels_last_ready(x_in);
    const Padding2d padding{left, right, top, bottom};
    kernels::MaxPoolForwardArgs a;
    a.shape = pool_shape(x, kernel, stride, padding);
    const std::vector<int64_t> out_sizes{x.size(0), x.size(1), a.shape.out_height,
                                         a.shape.out_width};
    auto out = channels_last_empty(out_sizes, x.options());
    auto argmax = channels_last_empty(out_sizes, x.options().dtype(torch::kUInt8));
    a.x = x.data_ptr();
    a.type = elem_type(x);
    a.out = out.data_ptr();
    a.argmax = argmax.data_ptr<uint8_t>();
    a.pad_value = static_cast<float>(pad_value);
    kernels::max_pool_forward(a, kernels::current_stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    ctx->save_for_backward({argmax});
    ctx->saved_data["input_sizes"] = x.sizes().vec();
    ctx->saved_data["window"] = std::vector<int64_t>{kernel, stride, left, right, top, bottom};
    return {out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto argmax = ctx->get_saved_variables()[0];
    const auto sizes = ctx->saved_data["input_sizes"].toIntVector();
    const auto w = ctx->saved_data["window"].toIntVector();
    const auto grad = channels_last_ready(grads[0]);
    auto grad_x = channels_last_empty(sizes, grad.options());
    kernels::MaxPoolBackwardArgs a;
    a.shape = pool_shape(grad_x, w[0], w[1], {w[2], w[3], w[4], w[5]});
    a.grad_out = grad.data_ptr();
    a.type = elem_type(grad);
    a.argmax = argmax.data_ptr<uint8_t>();
    a.grad_x = grad_x.data_ptr();
    kernels::max_pool_backward(a, kernels::current_stream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    variable_list out(8);
    out[0] = grad_x;
    return out;
  }
};

}  // namespace

bool max_pool_kernels_apply(const torch::Tensor& x, int64_t kernel, const Padding2d& padding) {
  for (auto p : padding)
    if (p < 0 || p >= kernel) return false;
  return fast_kernels_for(x) && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         kernels::max_pool_shape_supported(x.size(1), kernel) &&
         x.size(2) + padding[2] + padding[3] >= kernel &&
         x.size(3) + padding[0] + padding[1] >= kernel;
}

torch::Tensor padded_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride,
                              const Padding2d& padding, double pad_value) {
  if (!max_pool_kernels_apply(x, kernel, padding))
    return aten_padded_max_pool(x, kernel, stride, padding, pad_value);
  return PaddedMaxPoolFunction::apply(x, kernel, stride, padding[0], padding[1], padding[2],
                                      padding[3], pad_value)[0];
}

#else  // LibTorch without CUDA: ATen only.

bool max_pool_kernels_apply(const torch::Tensor&, int64_t, const Padding2d&) {
  return false;
}

torch::Tensor padded_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride,
                              const Padding2d& padding, double pad_value) {
  return aten_padded_max_pool(x, kernel, stride, padding, pad_value);
}

#endif

}  // namespace vitlab::ops
