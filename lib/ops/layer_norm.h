// LayerNorm with the residual add folded in. On the CUDA fast path (ops/fast_kernels.h): In a pre-LN block the
// stream is x + branch; computing that sum inside the next LayerNorm's kernel (and writing the
// normalised output directly in autocast's dtype) replaces an add, a LayerNorm and a cast kernel
// per LayerNorm, forward and backward (together about a quarter of ViT-B/16's step on an H100;
// with the kernels the fast path ran +15% ViT-B/16, +24% for the small 28 px ViT).
// Where the kernels do not apply (CPU, LibTorch without CUDA, an unsupported width or dtype) the
// same function is computed with ATen operations.
#pragma once
#include <torch/torch.h>

#include <utility>

namespace vitlab::ops {

// What the caller does with a norm's output; the kernels use it, ATen's path ignores it.
struct NormUse {
  // The output goes straight into a linear layer, which under autocast casts it anyway: the
  // kernel may write autocast's dtype (bfloat16) instead of float32.
  bool feeds_matmul = false;
  // The stream `x` is kept for the backward by an earlier op anyway (the block's first norm saves
  // it): keep x and a bfloat16 branch instead of their float32 sum, and add them again in the
  // backward. A pre-LN block's second norm then holds its attention branch in bf16 rather than
  // another float32 copy of the stream (ViT-B/16 at batch 256: 0.9 GB less).
  bool stream_saved = false;
};

// A LayerNorm over the last dimension: LN(x) = (x - mean) / sqrt(var + eps) * weight + bias.
struct LayerNormParams {
  torch::Tensor weight, bias;  // (D)
  double eps;
};

// True when the CUDA kernels would run for this stream and LayerNorm (the switch included).
bool layer_norm_kernels_apply(const torch::Tensor& x, const LayerNormParams& norm);

// LN(x).
torch::Tensor layer_norm(const torch::Tensor& x, const LayerNormParams& norm, NormUse use = {});

// (z, LN(z)) for the residual stream z = stream + branch, the add inside the norm's kernel. An
// undefined branch means z = stream.
std::pair<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& stream,
                                                       const torch::Tensor& branch,
                                                       const LayerNormParams& norm,
                                                       NormUse use = {});

}  // namespace vitlab::ops
