// The ViT's linear layers on the CUDA fast path: y = act(x W^T + b) under bf16 autocast, forward
// exactly as at::linear (cuBLASLt with its bias epilogue), backward with the bias gradient summed
// by one bandwidth-bound kernel; for the MLP's first layer that kernel also applies GELU's
// backward, so the gradient is read once. ATen's separate bias-gradient reductions were 5% of
// ViT-B/16's and 11% of ViT-S/16's train step on an H200 (vitlab bench --profile, 2026-11-26).
// Where it does not apply (CPU, no autocast, a width not divisible by 8, no bias) the ATen
// operations run: the same function.
#pragma once
#include <torch/torch.h>

namespace vitlab {

enum class Activation { kNone, kGelu };  // GELU: the exact erf form, as timm and the paper

// act(linear(x)); `fast`: use the fast path's backward where it applies.
torch::Tensor linear_act(const torch::Tensor& x, const torch::nn::Linear& layer, Activation act,
                         bool fast);

// True when `fast` would take the custom backward for this input and layer.
bool fast_linear_applies(const torch::Tensor& x, const torch::nn::Linear& layer);

}  // namespace vitlab
