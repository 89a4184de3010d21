// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (PyTorch wheels, CUDA) differ.
// Everything else in vitlab calls these wrappers instead of the version-specific API.
#pragma once
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#define VITLAB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// 2.x has the fused scaled-dot-product attention kernels (flash / memory-efficient).
#define VITLAB_HAS_SDPA VITLAB_TORCH_AT_LEAST(2, 0)
// 2.4+ has ATen's fused AdamW and SGD kernels taking the learning rate as a device tensor
// (what CUDA-graph replays need).
#define VITLAB_HAS_FUSED_OPTIMIZERS VITLAB_TORCH_AT_LEAST(2, 4)

// c10d's process groups (data-parallel training): in 1.13 Gloo and NCCL derive from
// c10d::ProcessGroup; from 2.0 from c10d::Backend, which a ProcessGroup wraps. Both declare the
// same collectives (allreduce, broadcast) that vitlab calls.
namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

namespace vitlab::compat {

#if VITLAB_TORCH_AT_LEAST(2, 0)
using DistBackend = c10d::Backend;
#else
using DistBackend = c10d::ProcessGroup;
#endif

// softmax(q k^T * scale + bias) v, for q/k/v of shape (B, H, N, d). `bias` broadcasts to
// (B, H, N, N) or is undefined. Uses the fused kernel where LibTorch has it, the explicit
// formula otherwise; both compute the same function.
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, const torch::Tensor& bias,
                                                  double dropout_p) {
#if VITLAB_HAS_SDPA
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  c10::optional<torch::Tensor> mask;
  if (bias.defined()) mask = bias.to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, mask, dropout_p, /*is_causal=*/false, scale);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto logits = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, N, N)
  if (bias.defined()) logits = logits + bias;
  auto weights = torch::softmax(logits, -1);
  if (dropout_p > 0) weights = torch::dropout(weights, dropout_p, /*train=*/true);
  return torch::matmul(weights, v);
#endif
}

#if VITLAB_HAS_FUSED_OPTIMIZERS
// AdamW over parameter lists in one multi-tensor kernel. `steps` are float32 device scalars
// already incremented for this update; `lr` a float32 device scalar.
inline void fused_adamw(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                        at::TensorList exp_avg_sqs, at::TensorList steps, const at::Tensor& lr,
                        double beta1, double beta2, double weight_decay, double eps) {
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1,
                    beta2, weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
}
// SGD with momentum (PyTorch semantics, dampening 0) in one multi-tensor kernel.
inline void fused_sgd(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                      double weight_decay, double momentum, const at::Tensor& lr, bool nesterov) {
  at::_fused_sgd_(params, grads, momentum_buffers, weight_decay, momentum, lr, /*dampening=*/0.0,
                  nesterov, /*maximize=*/false, /*is_first_step=*/false);
}
#endif

// a @ b in float32 from bfloat16 (or float16) operands. cuBLAS accumulates in float32 either
// way; from 2.9 the float32 result is written directly instead of being rounded to the operands'
// dtype and cast (one kernel less per weight gradient, and no bf16 rounding of the gradient).
inline torch::Tensor mm_float(const torch::Tensor& a, const torch::Tensor& b) {
#if VITLAB_TORCH_AT_LEAST(2, 9)
  if (a.is_cuda()) return at::mm(a, b, at::kFloat);
#endif
  return a.mm(b).to(at::kFloat);
}

// Every tensor in `tensors` times the 0-dim tensor `factor` (on their device, no host sync).
// 2.1+ does it in multi-tensor kernels; before, one kernel per tensor.
inline void scale_all_(const std::vector<torch::Tensor>& tensors, const torch::Tensor& factor) {
#if VITLAB_TORCH_AT_LEAST(2, 1)
  at::_foreach_mul_(tensors, factor);
#else
  for (const auto& t : tensors) t.mul_(factor);
#endif
}

// The dtype CUDA autocast casts matmul inputs to, or nullopt when autocast is off.
inline c10::optional<at::ScalarType> cuda_autocast_dtype() {
#if VITLAB_TORCH_AT_LEAST(2, 4)
  if (!at::autocast::is_autocast_enabled(at::kCUDA)) return c10::nullopt;
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  if (!at::autocast::is_enabled()) return c10::nullopt;
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

// bf16 autocast on CUDA, as a scope guard. On CPU it does nothing (vitlab trains CPU in fp32).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if VITLAB_TORCH_AT_LEAST(2, 4)
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    // No cast cache: a CUDA graph must not hold casts made outside it.
    at::autocast::set_autocast_cache_enabled(false);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    previous_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!enabled_) return;
#if VITLAB_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
    at::autocast::set_enabled(previous_);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace vitlab::compat
