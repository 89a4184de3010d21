// LayerNorm with the residual add folded in, for the ViT's CUDA fast path. In a pre-LN block the
// stream is x + branch; computing that sum inside the next LayerNorm's kernel (and writing the
// normalised output directly in autocast's dtype) replaces an add, a LayerNorm and a cast kernel
// per LayerNorm, forward and backward (together about a quarter of ViT-B/16's step on an H100;
// with the kernels the fast path ran +15% ViT-B/16, +24% for the small 28 px ViT).
// Where the kernels do not apply (CPU, LibTorch without CUDA, an unsupported width or dtype) the
// same function is computed with ATen operations.
#pragma once
#include <torch/torch.h>

#include <utility>

namespace vitlab {

// True when the CUDA kernels would run for this stream and LayerNorm.
bool fused_norm_kernels_apply(const torch::Tensor& x, const torch::nn::LayerNorm& norm);

// LN(x). `feeds_matmul`: the output goes straight into a linear layer, which under autocast casts
// it anyway, so the kernel writes autocast's dtype (bfloat16) instead of float32.
torch::Tensor fused_layer_norm(const torch::Tensor& x, const torch::nn::LayerNorm& norm,
                               bool feeds_matmul);

// (x + delta, LN(x + delta)): the residual add and the next LayerNorm in one kernel.
// `keep_inputs`: for the backward, keep x and a bfloat16 delta instead of their float32 sum, and
// add them again there. Half the bytes where x is kept anyway (the stream that an earlier norm
// saved): a pre-LN block's second norm then holds its attention branch in bf16 rather than
// another float32 copy of the stream (ViT-B/16 at batch 256: 0.9 GB less).
std::pair<torch::Tensor, torch::Tensor> fused_add_layer_norm(const torch::Tensor& x,
                                                             const torch::Tensor& delta,
                                                             const torch::nn::LayerNorm& norm,
                                                             bool feeds_matmul,
                                                             bool keep_inputs = false);

}  // namespace vitlab
