// A 2-D convolution without bias as the models describe it to the ops layer: BiT's weight
// standardisation happens in the model (models/layers.h, StdConv2d); how the product runs, and
// whether its input is kept for the backward pass (ops/group_norm.h, add_group_norm_act_conv),
// is decided here.
#pragma once
#include <torch/torch.h>

#include <array>

namespace vitlab::ops {

struct Conv2dSpec {
  torch::Tensor weight;  // (out, in, kh, kw), cast to the input's dtype by the op
  int64_t stride = 1;
  int64_t padding = 0;  // zeros on every side, by the convolution itself
  // Zeros added first as (left, right, top, bottom), for TensorFlow's SAME padding, which can be
  // asymmetric; all zero otherwise.
  std::array<int64_t, 4> explicit_padding{0, 0, 0, 0};
  bool pads_explicitly() const {
    return explicit_padding != std::array<int64_t, 4>{0, 0, 0, 0};
  }
};

// conv(x, spec.weight) with the spec's padding and stride. (B, C, H, W) -> (B, out, H', W')
torch::Tensor conv2d(const torch::Tensor& x, const Conv2dSpec& spec);

}  // namespace vitlab::ops
