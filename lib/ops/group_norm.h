// GroupNorm (+ ReLU) for BiT's CUDA fast path, on channels-last activations. Under autocast ATen's
// group_norm casts its bf16 input to float32, cannot keep the channels-last layout (it makes the
// input contiguous in NCHW), and its output is cast back to bf16 by the next convolution, which
// then converts the layout again: on an H100 those copies, casts and conversions were over half of
// BiT-R50x1's train step. The kernels read the bf16 NHWC input and write the output in the dtype
// and layout the next layer wants. Where they do not apply (CPU, LibTorch without CUDA, NCHW
// input, an unsupported shape or dtype, fp16 autocast, more than 4096 channels as in the last
// stage of BiT-R50x3) ATen computes the same function.
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

#include "ops/conv.h"

namespace vitlab::ops {

// True when the CUDA kernels would run for this input and these parameters (the fast-kernels
// switch, ops/fast_kernels.h, included).
bool group_norm_kernels_apply(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias);

// [relu](group_norm(x) * weight + bias). `feeds_conv`: the output goes straight into a
// convolution, which under autocast casts it anyway, so the kernel writes autocast's dtype
// (bfloat16) instead of float32.
torch::Tensor group_norm_act(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                             const torch::Tensor& bias, double eps, bool relu, bool feeds_conv);

// (x + delta, [relu](group_norm(x + delta) * weight + bias)): a residual add and the next norm
// in one pass (BiT's pre-activation blocks: the block's output and the next block's first norm).
// The sum is rounded to x's dtype before it is normalised, as the separate add would. An
// undefined delta means the sum is x.
std::pair<torch::Tensor, torch::Tensor> add_group_norm_act(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, bool feeds_conv);

// (x + delta, [conv([relu](group_norm(x + delta) * weight + bias)) for each conv]) for one or two
// convolutions that are the norm's only consumers (BiT's pre-activation blocks: the first
// convolution and the shortcut's projection). On the CUDA fast path the norm's output is not
// kept for the convolutions' backward pass but recomputed there from the norm's saved input and
// statistics, one pass over it: the block keeps one activation of its input's width instead of
// two, as torch.compile's recomputation does (bit_r26_28 at batch 256: peak memory in
// README Performance). Values and gradients are the separate ops' bit for bit. Elsewhere:
// add_group_norm_act (feeds_conv), then ops::conv2d.
std::pair<torch::Tensor, std::vector<torch::Tensor>> add_group_norm_act_conv(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, const std::vector<Conv2dSpec>& convs);

}  // namespace vitlab::ops
