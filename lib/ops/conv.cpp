#include "ops/conv.h"

namespace vitlab::ops {

torch::Tensor conv2d(const torch::Tensor& x, const Conv2dSpec& spec) {
  const auto& p = spec.explicit_padding;
  const auto input =
      spec.pads_explicitly() ? torch::constant_pad_nd(x, {p[0], p[1], p[2], p[3]}, 0.0) : x;
  return torch::conv2d(input, spec.weight.to(x.scalar_type()), {}, spec.stride, spec.padding);
}

}  // namespace vitlab::ops
