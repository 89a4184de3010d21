#include "ops/attention.h"

#include <cmath>
#include <stdexcept>

#include "core/compat.h"

namespace vitlab::ops {
namespace {
thread_local AttentionRecorder* recorder = nullptr;
}  // namespace

AttentionRecorder::AttentionRecorder() {
  if (recorder) throw std::logic_error("AttentionRecorder: recorders do not nest");
  recorder = this;
}

AttentionRecorder::~AttentionRecorder() {
  recorder = nullptr;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias, double dropout) {
  if (!recorder) return compat::scaled_dot_product_attention(q, k, v, bias, dropout);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto logits = torch::matmul(q * scale, k.transpose(-2, -1));  // (B, H, T, T)
  if (bias.defined()) logits = logits + bias;
  // Softmax in float32: in bf16 the logits lose the small differences that decide the weights
  // (fp16/bf16 ViT training diverged until attention ran in fp32, as timm's attention does).
  auto weights = torch::softmax(logits.to(torch::kFloat), -1).to(q.scalar_type());
  recorder->weights().push_back(weights);
  return torch::matmul(torch::dropout(weights, dropout, dropout > 0.0), v);  // (B, H, T, d)
}

}  // namespace vitlab::ops
