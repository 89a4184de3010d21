#include "ops/linear.h"

#include "core/compat.h"
#include "ops/kernel_tensors.h"
#include "ops/fast_kernels.h"
#include "ops/weight_cast.h"
#if VITLAB_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>

#include <ATen/cuda/CUDAGraphsUtils.cuh>
#include <map>
#include <mutex>

#include "ops/cuda/linear_grad_kernels.h"
#endif

namespace vitlab::ops {
namespace {

torch::Tensor aten_linear_act(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, Activation act) {
  auto y = torch::linear(x, weight, bias);
  return act == Activation::kGelu ? torch::gelu(y) : y;
}

// The (..., 3, heads, d) view of a qkv projection's (..., 3D) output.
std::vector<int64_t> qkv_sizes(const torch::Tensor& h, int64_t heads) {
  auto sizes = h.sizes().vec();
  const int64_t width = sizes.back() / 3;
  sizes.back() = 3;
  sizes.push_back(heads);
  sizes.push_back(width / heads);
  return sizes;
}

std::vector<torch::Tensor> aten_qkv_projection(const torch::Tensor& x, const torch::Tensor& weight,
                                               const torch::Tensor& bias, int64_t heads) {
  auto h = torch::linear(x, weight, bias);  // (..., 3D)
  return h.reshape(qkv_sizes(h, heads)).unbind(-3);
}

}  // namespace

#if VITLAB_WITH_CUDA
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The GELU kernels' tables for one device (see kernels::gelu_table_bits), filled by ATen's own
// kernels once per device and kept for the process.
struct GeluTables {
  torch::Tensor values;       // (kGeluTableEntries) bf16: GELU(h)
  torch::Tensor derivatives;  // (kGeluTableEntries) float32: gelu'(h)
};

const GeluTables& gelu_tables(const torch::Device& any_device) {
  // Keyed by the device's index: "cuda" without one means the current device.
  const torch::Device device(
      torch::kCUDA, any_device.has_index() ? any_device.index() : c10::cuda::current_device());
  const c10::cuda::CUDAGuard on_device(device);
  static std::mutex mutex;
  static auto* tables = new std::map<int, GeluTables>();  // never destroyed: outlives CUDA
  std::lock_guard<std::mutex> lock(mutex);
  auto found = tables->find(device.index());
  if (found != tables->end()) return found->second;
  // Filling them is not graph work: a captured step must follow an eager one (TrainStep's warm-up).
  TORCH_CHECK(at::cuda::currentStreamCaptureStatus() == at::cuda::CaptureStatus::None,
              "vitlab: the GELU tables must be built before a CUDA graph is captured "
              "(prepare_fast_linears)");
  std::vector<int16_t> bits(kernels::kGeluTableEntries);
  for (int i = 0; i < kernels::kGeluTableEntries; ++i)
    bits[i] = static_cast<int16_t>(kernels::gelu_table_bits(i));
  const auto h = torch::from_blob(bits.data(), {kernels::kGeluTableEntries}, torch::kInt16)
                     .view(torch::kBFloat16)
                     .to(device);
  const auto h32 = h.to(torch::kFloat);
  GeluTables t{torch::gelu(h), at::gelu_backward(torch::ones_like(h32), h32)};
  // Other streams read the tables from now on.
  C10_CUDA_CHECK(cudaStreamSynchronize(at::cuda::getCurrentCUDAStream()));
  return tables->emplace(device.index(), std::move(t)).first->second;
}

torch::Tensor table_gelu(const torch::Tensor& h) {
  TORCH_CHECK(h.is_contiguous() && h.scalar_type() == torch::kBFloat16 && h.numel() % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(h.data_ptr()) % 16 == 0,
              "vitlab: the GELU kernel takes a contiguous, 16-byte aligned bf16 tensor of a "
              "multiple of 8 elements");
  const c10::cuda::CUDAGuard on_device(h.device());
  auto out = torch::empty_like(h);
  kernels::gelu_forward(h.data_ptr(), out.data_ptr(), h.numel(),
                        gelu_tables(h.device()).values.data_ptr(), kernels::sm_count(),
                        kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

constexpr const char* kSlotKey = "bias_grad_slot";

torch::ScalarType saved_dtype(AutogradContext* ctx, const char* key) {
  return static_cast<torch::ScalarType>(ctx->saved_data[key].toInt());
}

// Column sums of a (rows, cols) bf16 gradient into `partial` (chunks, cols); with `gelu_input`
// (the pre-activation h), the gradient becomes grad * gelu'(h), returned, summed in the same pass.
torch::Tensor column_sums(const torch::Tensor& grad, const torch::Tensor& partial,
                          const torch::Tensor& gelu_input) {
  kernels::ColumnSumArgs a;
  a.partial = partial.data_ptr<float>();
  a.rows = grad.size(0);
  a.cols = static_cast<int>(grad.size(1));
  a.grad = grad.data_ptr();
  const int chunks = static_cast<int>(partial.size(0));
  torch::Tensor result = grad;
  if (gelu_input.defined()) {
    result = torch::empty_like(grad);
    a.input = gelu_input.data_ptr();
    a.grad_input = result.data_ptr();
    a.gelu_table = gelu_tables(grad.device()).derivatives.data_ptr<float>();
    kernels::gelu_backward_column_sums(a, chunks, kernels::current_stream());
  } else {
    kernels::column_sums(a, chunks, kernels::current_stream());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return result;
}

// The bias gradient from (groups, chunks, cols) column sums, as autocast's path has it: summed in
// float32, rounded to the bf16 bias, cast to the bias's dtype.
torch::Tensor bias_gradient(const torch::Tensor& partial, torch::ScalarType bias_dtype) {
  const int64_t groups = partial.size(0), chunks = partial.size(1), cols = partial.size(2);
  auto grad = torch::empty({groups * cols}, partial.options());
  kernels::finish_column_sums(partial.data_ptr<float>(), static_cast<int>(groups),
                              static_cast<int>(chunks), static_cast<int>(cols),
                              grad.data_ptr<float>(), kernels::current_stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return bias_dtype == torch::kFloat ? grad : grad.to(bias_dtype);
}

// The weight gradient grad^T x; for a float32 weight computed into float32 directly (autocast's
// path rounds it to bfloat16 first, then casts).
torch::Tensor weight_gradient(const torch::Tensor& grad, const torch::Tensor& x2d,
                              torch::ScalarType weight_dtype) {
  if (weight_dtype == torch::kFloat) return compat::mm_float(grad.t(), x2d);
  return grad.t().mm(x2d).to(weight_dtype);
}

void save_dtypes(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                 const torch::Tensor& bias) {
  ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
  ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
  ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias.scalar_type());
}

// Forward as autocast runs it (inputs, weight and bias cast to bfloat16, one at::linear); the
// backward computes what autograd would from those casts (the weight gradient without its
// rounding to bfloat16, see weight_gradient).
struct LinearActFunction : torch::autograd::Function<LinearActFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t activation) {
    const auto x16 = x.to(torch::kBFloat16), w16 = bf16_copy(weight);
    auto h = torch::linear(x16, w16, bf16_copy(bias));
    const bool gelu = activation == static_cast<int64_t>(Activation::kGelu);
    ctx->save_for_backward({x16, w16, gelu ? h : torch::Tensor()});
    save_dtypes(ctx, x, weight, bias);
    if (!gelu)
      ctx->saved_data[kSlotKey] = at::IValue::make_capsule(c10::make_intrusive<BiasGradSlot>());
    return {gelu ? table_gelu(h) : h};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x16 = saved[0], &w16 = saved[1], &h = saved[2];
    const int64_t out_features = w16.size(0), in_features = w16.size(1);
    const auto bias_dtype = saved_dtype(ctx, "bias_dtype");
    torch::Tensor grad_bias;
    if (ctx->saved_data.count(kSlotKey)) {  // summed by the output's consumer? (BiasGradSlot)
      auto slot =
          c10::static_intrusive_pointer_cast<BiasGradSlot>(ctx->saved_data[kSlotKey].toCapsule());
      const bool same_gradient = slot->grad && grads[0].defined() &&
                                 slot->grad->lock().get() == grads[0].unsafeGetTensorImpl() &&
                                 slot->grad_version == grads[0]._version() &&
                                 slot->stream == at::cuda::getCurrentCUDAStream().unwrap();
      if (slot->sums.defined() && same_gradient && grads[0].size(-1) == out_features) {
        grad_bias = slot->sums.to(bias_dtype);
        slot->handed_over = true;
      }
      slot->sums = torch::Tensor();
      slot->grad.reset();
      slot->stream.reset();
    }
    auto grad = kernels::kernel_ready(grads[0].to(torch::kBFloat16)).reshape({-1, out_features});
    if (!grad_bias.defined()) {
      const int chunks =
          kernels::column_sum_chunks(grad.size(0), out_features, kernels::sm_count(), h.defined());
      auto partial = torch::empty({chunks, out_features}, grad.options().dtype(torch::kFloat));
      // GELU: grad becomes grad * gelu'(h), summed in the same pass.
      grad = column_sums(grad, partial,
                         h.defined() ? kernels::kernel_ready(h).reshape({-1, out_features}) : h);
      grad_bias = bias_gradient(partial.unsqueeze(0), bias_dtype);
    }
    auto grad_weight =
        weight_gradient(grad, x16.reshape({-1, in_features}), saved_dtype(ctx, "weight_dtype"));
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0))
      grad_x = grad.mm(w16).reshape(x16.sizes()).to(saved_dtype(ctx, "x_dtype"));
    return {grad_x, grad_weight, grad_bias, torch::Tensor()};
  }
};

// The attention's qkv projection with q, k and v as three outputs (views of the one linear's
// output), so their gradients arrive separately: the backward computes dx as three accumulating
// matmuls and the weight and bias gradients by row block. Autograd would first stack the three
// gradients into the linear's (..., 3D) layout: a copy that was 2% of ViT-B/16's step (H200).
// dx is rounded to bfloat16 after each of the three products instead of once.
struct QkvFunction : torch::autograd::Function<QkvFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t heads) {
    const auto x16 = x.to(torch::kBFloat16), w16 = bf16_copy(weight);
    auto h = torch::linear(x16, w16, bf16_copy(bias));  // (..., 3D)
    ctx->save_for_backward({x16, w16});
    save_dtypes(ctx, x, weight, bias);
    return h.reshape(qkv_sizes(h, heads)).unbind(-3);  // three (..., heads, d)
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x16 = saved[0], &w16 = saved[1];
    const int64_t width = w16.size(0) / 3, in_features = w16.size(1);
    const auto x2d = x16.reshape({-1, in_features});
    const int64_t rows = x2d.size(0);
    const int chunks = kernels::column_sum_chunks(rows, width, kernels::sm_count());
    auto partial = torch::empty({3, chunks, width}, x16.options().dtype(torch::kFloat));
    std::vector<torch::Tensor> weight_blocks;
    torch::Tensor grad_x;
    for (int64_t j = 0; j < 3; ++j) {
      if (!grads[j].defined()) {  // an unused output: zero gradient for its rows
        partial[j].zero_();
        weight_blocks.push_back(torch::zeros({width, in_features}, partial.options()));
        continue;
      }
      auto grad = kernels::kernel_ready(grads[j].to(torch::kBFloat16)).reshape({rows, width});
      column_sums(grad, partial[j], torch::Tensor());
      weight_blocks.push_back(weight_gradient(grad, x2d, torch::kFloat));
      if (!ctx->needs_input_grad(0)) continue;
      const auto w_block = w16.narrow(0, j * width, width);  // (width, in_features) rows
      grad_x = grad_x.defined() ? grad_x.addmm_(grad, w_block) : grad.mm(w_block);
    }
    auto grad_bias = bias_gradient(partial, saved_dtype(ctx, "bias_dtype"));  // (3 * width)
    auto grad_weight = torch::cat(weight_blocks, 0).to(saved_dtype(ctx, "weight_dtype"));
    if (ctx->needs_input_grad(0)) {
      if (!grad_x.defined()) grad_x = torch::zeros({rows, in_features}, x16.options());
      grad_x = grad_x.reshape(x16.sizes()).to(saved_dtype(ctx, "x_dtype"));
    }
    return {grad_x, grad_weight, grad_bias, torch::Tensor()};
  }
};
}  // namespace

bool fast_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias) {
  return fast_kernels_for(x) && x.dim() >= 2 && compat::cuda_autocast_dtype() == torch::kBFloat16 &&
         bias.defined() && kernels::column_sum_supported(weight.size(0)) &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act) {
  if (!fast_linear_applies(x, weight, bias)) return aten_linear_act(x, weight, bias, act);
  return LinearActFunction::apply(x, weight, bias, static_cast<int64_t>(act))[0];
}

std::vector<torch::Tensor> qkv_projection(const torch::Tensor& x, const torch::Tensor& weight,
                                          const torch::Tensor& bias, int64_t heads) {
  if (!fast_linear_applies(x, weight, bias)) return aten_qkv_projection(x, weight, bias, heads);
  return QkvFunction::apply(x, weight, bias, heads);
}

c10::intrusive_ptr<BiasGradSlot> bias_grad_slot(const torch::Tensor& y) {
  using Node = torch::autograd::CppNode<LinearActFunction>;
  auto* node = dynamic_cast<Node*>(y.grad_fn().get());
  if (!node || y.output_nr() != 0 || !node->ctx_.saved_data.count(kSlotKey)) return {};
  return c10::static_intrusive_pointer_cast<BiasGradSlot>(
      node->ctx_.saved_data[kSlotKey].toCapsule());
}

void prepare_fast_linears(const torch::Device& device) {
  if (device.is_cuda()) gelu_tables(device);
}

torch::Tensor fast_gelu(const torch::Tensor& h) {
  TORCH_CHECK(h.is_cuda() && h.dim() == 2 && kernels::column_sum_supported(h.size(1)),
              "vitlab: fast_gelu takes a bf16 CUDA tensor of (rows, cols), cols % 8 == 0");
  return table_gelu(kernels::kernel_ready(h));
}

torch::Tensor fast_gelu_backward(const torch::Tensor& grad, const torch::Tensor& h) {
  TORCH_CHECK(h.is_cuda() && h.dim() == 2 && kernels::column_sum_supported(h.size(1)) &&
                  grad.sizes() == h.sizes() && grad.scalar_type() == torch::kBFloat16 &&
                  h.scalar_type() == torch::kBFloat16 && grad.device() == h.device(),
              "vitlab: fast_gelu_backward takes two bf16 CUDA tensors of one (rows, cols) shape, "
              "cols % 8 == 0");
  const c10::cuda::CUDAGuard on_device(h.device());
  const int chunks =
      kernels::column_sum_chunks(h.size(0), h.size(1), kernels::sm_count(), /*gelu=*/true);
  auto partial = torch::empty({chunks, h.size(1)}, h.options().dtype(torch::kFloat));
  return column_sums(kernels::kernel_ready(grad), partial, kernels::kernel_ready(h));
}

#else  // LibTorch without CUDA: ATen only.

bool fast_linear_applies(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  return false;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act) {
  return aten_linear_act(x, weight, bias, act);
}

std::vector<torch::Tensor> qkv_projection(const torch::Tensor& x, const torch::Tensor& weight,
                                          const torch::Tensor& bias, int64_t heads) {
  return aten_qkv_projection(x, weight, bias, heads);
}

c10::intrusive_ptr<BiasGradSlot> bias_grad_slot(const torch::Tensor&) {
  return {};
}

void prepare_fast_linears(const torch::Device&) {}

torch::Tensor fast_gelu(const torch::Tensor&) {
  TORCH_CHECK(false, "vitlab: fast_gelu needs a CUDA build");
}

torch::Tensor fast_gelu_backward(const torch::Tensor&, const torch::Tensor&) {
  TORCH_CHECK(false, "vitlab: fast_gelu_backward needs a CUDA build");
}

#endif

}  // namespace vitlab::ops
