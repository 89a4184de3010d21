#include "train/flops.h"

#include "models/parts.h"

namespace vitlab {
namespace {

double conv(int64_t out_hw, int64_t in_ch, int64_t out_ch, int64_t kernel) {
  return 2.0 * double(out_hw) * double(out_hw) * double(in_ch) * double(out_ch) * double(kernel * kernel);
}

int64_t strided(int64_t size, int64_t stride) { return (size + stride - 1) / stride; }

// ResNet stem + stages: returns FLOPs and sets `out_hw`/`out_ch` to the feature map's size.
double resnet_flops(const ModelConfig& c, int64_t& out_hw, int64_t& out_ch) {
  double f = 0;
  int64_t hw = c.image_size;
  const int64_t stem_width = 64 * c.resnet_width;
  if (c.resnet_stem == ResNetStem::kImageNet) {
    hw = strided(hw, 2);
    f += conv(hw, c.in_channels, stem_width, 7);
    hw = c.resnet_padding == ConvPadding::kSame ? strided(hw, 2) : (hw + 2 - 3) / 2 + 1;  // max-pool
  } else {
    f += conv(hw, c.in_channels, stem_width, 3);
  }
  int64_t in = stem_width;
  for (size_t s = 0; s < c.resnet_layers.size(); ++s) {
    const int64_t out = 256 * c.resnet_width * (int64_t(1) << s), mid = out / 4;
    for (int64_t b = 0; b < c.resnet_layers[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      const int64_t out_hw_block = strided(hw, stride);
      f += conv(hw, in, mid, 1);             // conv1 at the input resolution
      f += conv(out_hw_block, mid, mid, 3);  // conv2 (strided)
      f += conv(out_hw_block, mid, out, 1);  // conv3
      if (stride != 1 || in != out) f += conv(out_hw_block, in, out, 1);  // projection
      hw = out_hw_block;
      in = out;
    }
  }
  out_hw = hw;
  out_ch = in;
  return f;
}

}  // namespace

double forward_flops_per_image(const ModelConfig& c) {
  if (c.family == ModelFamily::kResNet) {
    int64_t hw = 0, ch = 0;
    return resnet_flops(c, hw, ch) + 2.0 * double(ch) * c.num_classes;
  }
  const double D = c.width, M = c.mlp_dim;
  const int64_t grid = c.grid_size();
  const double N = double(grid * grid);
  const double T = N + (c.class_token ? 1 : 0);
  double f = 0;
  if (c.family == ModelFamily::kHybrid) {
    int64_t hw = 0, ch = 0;
    f += resnet_flops(c, hw, ch);
    f += 2.0 * N * double(ch * c.patch_size * c.patch_size) * D;
  } else {
    f += 2.0 * N * double(c.in_channels * c.patch_size * c.patch_size) * D;
  }
  const double mixer = token_mixer_part(c.token_mixer).flops(c, T);
  f += c.depth * (mixer + 4.0 * T * D * M);
  double head_in = D;
  if (c.representation_size > 0) {
    f += 2.0 * D * c.representation_size;
    head_in = c.representation_size;
  }
  return f + 2.0 * head_in * c.num_classes;
}

}  // namespace vitlab
