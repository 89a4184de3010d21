// The common interface of every factory model: images in, class logits out.
#pragma once
#include <torch/torch.h>

#include "config/model_config.h"

namespace vitlab {

class ImageClassifierImpl : public torch::nn::Module {
 public:
  explicit ImageClassifierImpl(ModelConfig config) : config_(std::move(config)) {}
  // (B, C, H, W) float images -> (B, num_classes) logits.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  const ModelConfig& config() const { return config_; }

  // Parameters that weight decay must skip: norms, biases, position embeddings, class token.
  virtual bool skip_weight_decay(const std::string& parameter_name) const;

  // Switches to hand-written CUDA kernels where a model has them (the ViT's fused residual-add +
  // LayerNorm); they compute the same function. Off by default; the CUDA fast path turns it on.
  virtual void use_fused_kernels(bool /*on*/) {}
  virtual bool uses_fused_kernels() const { return false; }

 protected:
  ModelConfig config_;
};

using ImageClassifier = std::shared_ptr<ImageClassifierImpl>;

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace vitlab
