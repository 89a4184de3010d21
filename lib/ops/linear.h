// Linear layers: y = act(x W^T + b). Under the fast-kernels switch (ops/fast_kernels.h), on
// CUDA under bf16 autocast, the ViT's linear layers on the CUDA fast path: y = act(x W^T + b) under bf16 autocast, forward
// exactly as at::linear (cuBLASLt with its bias epilogue), backward with the bias gradient summed
// by one bandwidth-bound kernel; for the MLP's first layer that kernel also applies GELU's
// backward, so the gradient is read once; GELU's forward and derivative come from lookup tables
// over the bf16 input (erf made them compute-bound). ATen's separate bias-gradient reductions were
// 5% of ViT-B/16's and 11% of ViT-S/16's train step on an H200 (vitlab bench --profile,
// 2026-11-26). Where it does not apply (CPU, no autocast, a width not divisible by 8, no bias) the
// ATen operations run: the same function.
#pragma once
#include <torch/torch.h>

#include <optional>

namespace vitlab::ops {

enum class Activation { kNone, kGelu };  // GELU: the exact erf form, as timm and the paper

// act(x W^T + b) for weight (out, in) and bias (out) or undefined, through at::linear (cuBLASLt with its bias epilogue), or the fast path's
// autograd function where it applies. torch::nn::Linear::forward is not used: LibTorch's C++
// functional does a matmul and then `out += bias` for 3-D inputs, which under bf16 autocast mixes
// a bf16 output with the fp32 bias in a slow casting kernel (19% of ViT-B/16's train step on an
// H100, vitlab bench --profile, 2026-11-26).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Activation act = Activation::kNone);

// q, k and v, each (..., heads, d), from the attention's qkv projection x W^T + b of width 3D
// (timm's layout: the 3 before the heads). On the fast path their gradients are taken
// separately by the projection's backward, without being stacked.
std::vector<torch::Tensor> qkv_projection(const torch::Tensor& x, const torch::Tensor& weight,
                                          const torch::Tensor& bias, int64_t heads);

// True when the fast path's autograd function would run for this input and layer (the
// fast-kernels switch included).
bool fast_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias);

// A fast linear layer's bias gradient handed over by the consumer of its output. The bias
// gradient is the column sums of the output's gradient; when the output is a residual branch,
// add_layer_norm's backward writes that gradient and sums it in the same pass, which saves
// the linear's backward a read of it (ViT-B/16: the attention projection and the second MLP
// layer). The linear's backward takes the sums only if the gradient it receives is the very
// tensor they were summed from (the same TensorImpl, held weakly so that its address cannot be
// reused, at the same version); if the output had another consumer, autograd would hand it a
// different or an accumulated tensor, and it sums by itself.
struct BiasGradSlot : torch::CustomClassHolder {
  // The gradient the sums were taken from.
  std::optional<c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>> grad;
  int64_t grad_version = -1;
  // The stream the sums were written on: the linear's backward takes them only on the same one
  // (autograd orders streams only for the gradients it passes along).
  std::optional<c10::Stream> stream;
  torch::Tensor sums;        // (out_features) float32, rounded to bf16 as autocast's path has it
  bool handed_over = false;  // set when the linear's backward took the sums
};
// The slot of `y` if y is the direct output of a fast linear layer without activation, recorded
// by autograd; null otherwise (no grad mode, ATen's path, any operation after the layer).
c10::intrusive_ptr<BiasGradSlot> bias_grad_slot(const torch::Tensor& y);

// The fast path's GELU kernels (table lookups, see ops/cuda/linear_grad_kernels.h) on bf16
// CUDA tensors of (rows, cols), cols % 8 == 0: bitwise at::gelu(h) and at::gelu_backward(grad, h).
// For tests; a CPU build throws.
torch::Tensor fast_gelu(const torch::Tensor& h);
// Builds what the fast path's linear kernels need on `device` (the GELU tables) now, outside any
// CUDA-graph capture; a no-op on CPU. Later calls return at once.
void prepare_fast_linears(const torch::Device& device);
torch::Tensor fast_gelu_backward(const torch::Tensor& grad, const torch::Tensor& h);

}  // namespace vitlab::ops
