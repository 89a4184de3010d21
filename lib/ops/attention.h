// Scaled dot-product attention, and a scope that records its weights for analysis.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vitlab::ops {

// softmax(q k^T / sqrt(d) + bias) v for q, k, v of (B, heads, T, d); `bias` broadcasts to
// (B, heads, T, T) or is undefined; dropout on the weights with probability `dropout`. The fused
// kernel where LibTorch has one (compat::scaled_dot_product_attention); the explicit formula while
// an AttentionRecorder is open, which then keeps the weights.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias, double dropout);

// While it exists, every attention() call on this thread runs the explicit path and appends its
// softmax weights (B, heads, T, T) to weights(), in call order: one tensor per attention layer
// of a forward pass (attention maps, rollout, mean attention distance). Recorders do not nest.
class AttentionRecorder {
 public:
  AttentionRecorder();
  ~AttentionRecorder();
  AttentionRecorder(const AttentionRecorder&) = delete;
  AttentionRecorder& operator=(const AttentionRecorder&) = delete;
  std::vector<torch::Tensor>& weights() { return weights_; }

 private:
  std::vector<torch::Tensor> weights_;
};

}  // namespace vitlab::ops
