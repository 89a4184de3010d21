// The common interface of every factory model: images in, class logits out.
#pragma once
#include <torch/torch.h>

#include "config/model_config.h"
#include "models/no_weight_decay.h"

namespace vitlab {

class ImageClassifierImpl : public torch::nn::Module {
 public:
  explicit ImageClassifierImpl(ModelConfig config) : config_(std::move(config)) {}
  // (B, C, H, W) float images -> (B, num_classes) logits.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  // (B, C, H, W) -> (B, F): the representation the classifier head reads (few-shot linear
  // evaluation fits its own linear map on it).
  virtual torch::Tensor features(const torch::Tensor& images) = 0;
  const ModelConfig& config() const { return config_; }

 protected:
  ModelConfig config_;
};

using ImageClassifier = std::shared_ptr<ImageClassifierImpl>;

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace vitlab
