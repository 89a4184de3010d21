// The ViT's linear layers on the CUDA fast path: y = act(x W^T + b) under bf16 autocast, forward
// exactly as at::linear (cuBLASLt with its bias epilogue), backward with the bias gradient summed
// by one bandwidth-bound kernel; for the MLP's first layer that kernel also applies GELU's
// backward, so the gradient is read once; GELU's forward and derivative come from lookup tables
// over the bf16 input (erf made them compute-bound). ATen's separate bias-gradient reductions were
// 5% of ViT-B/16's and 11% of ViT-S/16's train step on an H200 (vitlab bench --profile,
// 2026-11-26). Where it does not apply (CPU, no autocast, a width not divisible by 8, no bias) the
// ATen operations run: the same function.
#pragma once
#include <torch/torch.h>

namespace vitlab {

enum class Activation { kNone, kGelu };  // GELU: the exact erf form, as timm and the paper

// act(linear(x)); `fast`: use the fast path's backward where it applies.
torch::Tensor linear_act(const torch::Tensor& x, const torch::nn::Linear& layer, Activation act,
                         bool fast);

// q, k and v, each (..., heads, d), from the attention's qkv projection x W^T + b of width 3D
// (timm's layout: the 3 before the heads). With `fast` (where linear_act's fast path applies)
// their gradients are taken separately by the projection's backward, without being stacked.
std::vector<torch::Tensor> qkv_projection(const torch::Tensor& x, const torch::nn::Linear& layer,
                                          int64_t heads, bool fast);

// True when `fast` would take the custom backward for this input and layer.
bool fast_linear_applies(const torch::Tensor& x, const torch::nn::Linear& layer);

// The fast path's GELU kernels (table lookups, see models/cuda/linear_grad_kernels.h) on bf16
// CUDA tensors of (rows, cols), cols % 8 == 0: bitwise at::gelu(h) and at::gelu_backward(grad, h).
// For tests; a CPU build throws.
torch::Tensor fast_gelu(const torch::Tensor& h);
torch::Tensor fast_gelu_backward(const torch::Tensor& grad, const torch::Tensor& h);

}  // namespace vitlab
