// How vitlab's modules create and initialise their parameters. Every parameter is made by
// new_parameter() and initialised by the functions below, so that one scope can make a whole model
// of shapes alone: under ShapeOnlyScope the parameters are meta tensors (sizes, no memory) and no
// initialiser runs. `vitlab models` counts ViT-H's and BiT-R152x2's parameters that way in
// microseconds instead of allocating and initialising gigabytes.
#pragma once
#include <torch/torch.h>

namespace vitlab {

// While it exists, new_parameter() returns meta tensors and the initialisers do nothing, on this
// thread. Buffers are not affected (they are small and computed: the sin-cos table, indices).
class ShapeOnlyScope {
 public:
  ShapeOnlyScope();
  ~ShapeOnlyScope();
  ShapeOnlyScope(const ShapeOnlyScope&) = delete;
  ShapeOnlyScope& operator=(const ShapeOnlyScope&) = delete;

 private:
  bool previous_;
};

// An uninitialised float32 CPU tensor of `shape` (meta under ShapeOnlyScope).
torch::Tensor new_parameter(torch::IntArrayRef shape);

// Normal(0, std) truncated to [-2, 2] (absolute bounds, as timm's trunc_normal_ defaults).
void trunc_normal_(torch::Tensor& t, double std);
// Normal(mean, std).
void normal_(torch::Tensor& t, double mean, double std);
// The constant `value`.
void constant_(torch::Tensor& t, double value);
// PyTorch's default for nn.Linear and nn.Conv2d: weight kaiming_uniform_(a = sqrt(5)), bias
// uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)); `bias` may be undefined.
void default_init_(torch::Tensor& weight, torch::Tensor& bias);
// He normal initialisation (fan_out, ReLU), as timm's ResNetV2 convolutions.
void kaiming_normal_fan_out_(torch::Tensor& weight);

}  // namespace vitlab
