// BiT ResNetV2 (Kolesnikov et al. 2020): GroupNorm + weight-standardised convolutions.
// Pre-activation blocks for the BiT baseline; post-activation blocks (vit_jax's ResNet) for the
// hybrid stem. Parameter names follow timm's resnetv2 so weights can be exchanged.
#pragma once
#include <torch/torch.h>

#include "config/model_config.h"
#include "models/classifier.h"
#include "models/layers.h"

namespace vitlab {

struct ResNetBlockImpl : torch::nn::Module {
  ResNetBlockImpl(int64_t in, int64_t out, int64_t stride, const ModelConfig& c, double drop_path);
  // The block's input and output as Residual (stream + branch). A pre-activation block returns
  // (shortcut, residual branch), so that the add happens inside the next norm (ops/group_norm.h);
  // a post-activation block applies its ReLU to the sum and returns it whole.
  Residual forward(const Residual& x);
  bool preact;
  double drop_path_rate;
  GroupNormAct norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  StdConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  // Shortcut projection when shape changes: timm's `downsample.conv` (+ `downsample.norm` when
  // post-activation).
  std::shared_ptr<torch::nn::Module> downsample;
  StdConv2d downsample_conv{nullptr};
  GroupNormAct downsample_norm{nullptr};
};
TORCH_MODULE(ResNetBlock);

// Stem + stages (+ the final pre-activation norm): images -> feature map.
struct ResNetBackboneImpl : torch::nn::Module {
  explicit ResNetBackboneImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images);  // (B, C, H, W) -> (B, F, H/s, W/s)
  int64_t out_channels() const { return out_channels_; }

  ModelConfig config;
  std::shared_ptr<torch::nn::Module> stem;
  StdConv2d stem_conv{nullptr};
  GroupNormAct stem_norm{nullptr};
  torch::nn::ModuleList stages;
  GroupNormAct norm{nullptr};  // pre-activation only: the final GroupNorm + ReLU
  std::vector<std::vector<ResNetBlock>> blocks;
  int64_t out_channels_ = 0;
};
TORCH_MODULE(ResNetBackbone);

// The BiT baseline: backbone, global average pooling, linear head (timm's `head.fc`).
class ResNetV2Impl : public ImageClassifierImpl {
 public:
  explicit ResNetV2Impl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& images) override;
  torch::Tensor features(const torch::Tensor& images) override;  // (B, F) pooled

  ResNetBackbone backbone{nullptr};
  Linear fc{nullptr};
};

}  // namespace vitlab
