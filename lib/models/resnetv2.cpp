#include "models/resnetv2.h"

#include <limits>

#include "ops/max_pool.h"

namespace vitlab {

ResNetBlockImpl::ResNetBlockImpl(int64_t in, int64_t out, int64_t stride, const ModelConfig& c,
                                 double drop_path)
    : preact(c.resnet_preact), drop_path_rate(drop_path) {
  const int64_t mid = out / 4;
  const auto pad = c.resnet_padding;
  const double eps = c.std_conv_eps;
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
    downsample_conv = downsample->register_module("conv", StdConv2d(in, out, 1, stride, pad, eps));
    if (!preact)
      downsample_norm = downsample->register_module("norm", GroupNormAct(out, false, false));
  }
  // Pre-activation: norm before each conv (norm1 acts on the block input). Post-activation:
  // norm after each conv, the last without ReLU (applied after the residual sum).
  norm1 = register_module("norm1", GroupNormAct(preact ? in : mid, true, true));
  conv1 = register_module("conv1", StdConv2d(in, mid, 1, 1, pad, eps));
  norm2 = register_module("norm2", GroupNormAct(mid, true, true));
  conv2 = register_module("conv2", StdConv2d(mid, mid, 3, stride, pad, eps));
  norm3 = register_module("norm3", GroupNormAct(preact ? mid : out, preact, preact));
  conv3 = register_module("conv3", StdConv2d(mid, out, 1, 1, pad, eps));
  // Register in timm's order so named_parameters() lists them as timm does.
  if (preact) {
    // timm zero-inits nothing by default for BiT; the head is zero-initialised instead.
  } else {
    constant_(norm3->weight, 0.0);  // vit_jax: the last norm of a post-activation block starts at zero
  }
}

Residual ResNetBlockImpl::forward(const Residual& x) {
  if (preact) {
    // BiT: norm -> conv three times; the shortcut projects the first norm's output, which goes
    // into conv1 and that projection only: h = [conv1(norm1(z)), downsample_conv(norm1(z))].
    std::vector<StdConv2d> first_convs{conv1};
    if (downsample_conv) first_convs.push_back(downsample_conv);
    auto [z, h] = norm1->forward(x, first_convs);  // z = x.stream + x.branch
    auto shortcut = downsample_conv ? h[1] : z;
    auto y = conv2->forward(norm2->forward(h[0]));
    y = conv3->forward(norm3->forward(y));
    return {shortcut, vitlab::drop_path(y, drop_path_rate, is_training())};
  }
  // vit_jax's hybrid stem: conv -> norm three times, ReLU after the residual sum.
  const auto input = x.sum();
  auto shortcut = input;
  if (downsample_conv) shortcut = downsample_norm->forward(downsample_conv->forward(input));
  auto y = norm1->forward(conv1->forward(input));
  y = norm2->forward(conv2->forward(y));
  y = norm3->forward(conv3->forward(y));
  return {torch::relu(vitlab::drop_path(y, drop_path_rate, is_training()) + shortcut), {}};
}

ResNetBackboneImpl::ResNetBackboneImpl(const ModelConfig& c) : config(c) {
  const int64_t stem_width = 64 * c.resnet_width;
  const bool small = c.resnet_stem == ResNetStem::kSmall;
  stem = register_module("stem", std::make_shared<torch::nn::Module>());
  stem_conv =
      stem->register_module("conv", StdConv2d(c.in_channels, stem_width, small ? 3 : 7,
                                              small ? 1 : 2, c.resnet_padding, c.std_conv_eps));
  // Post-activation stem: norm, ReLU, then the max-pool. The norm's output stays float32 (as
  // autocast's group_norm) so that the max-pool's argmax, and with it the gradient, is the plain
  // path's: in bf16, values that differ in float32 can tie.
  if (!c.resnet_preact)
    stem_norm = stem->register_module("norm", GroupNormAct(stem_width, true, false));

  stages = register_module("stages", torch::nn::ModuleList());
  int64_t in = stem_width;
  const int64_t total_blocks = [&] {
    int64_t n = 0;
    for (auto d : c.resnet_layers) n += d;
    return n;
  }();
  int64_t block_index = 0;
  for (size_t s = 0; s < c.resnet_layers.size(); ++s) {
    const int64_t out = 256 * c.resnet_width * (int64_t(1) << s);
    auto stage = std::make_shared<torch::nn::Module>();
    auto stage_blocks = stage->register_module("blocks", torch::nn::ModuleList());
    std::vector<ResNetBlock> list;
    for (int64_t b = 0; b < c.resnet_layers[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      const double dpr = total_blocks > 1 ? c.drop_path * block_index / (total_blocks - 1) : 0.0;
      list.push_back(ResNetBlock(in, out, stride, c, dpr));
      stage_blocks->push_back(list.back());
      in = out;
      ++block_index;
    }
    stages->push_back(stage);
    blocks.push_back(std::move(list));
  }
  out_channels_ = in;
  if (c.resnet_preact) norm = register_module("norm", GroupNormAct(in, true, false));
}

torch::Tensor ResNetBackboneImpl::forward(const torch::Tensor& images) {
  // On CUDA, convolutions run channels-last (NHWC): cuDNN's fast bf16 kernels need it.
  auto input = images.is_cuda() ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
  auto x = stem_conv->forward(input);
  // A one-channel image's strides fit both layouts, so cuDNN keeps the stem's output, and with it
  // every later layer, in NCHW: converted to NHWC and back around each convolution, and ATen's
  // GroupNorm instead of the channels-last kernels (bit_r26_28 on an H200: 98 conversions a step).
  if (x.is_cuda()) x = x.contiguous(at::MemoryFormat::ChannelsLast);  // (B, C, H, W), NHWC
  if (stem_norm) x = stem_norm->forward(x);
  if (config.resnet_stem == ResNetStem::kImageNet) {
    // timm's BiT "fixed" stem pads by one zero on every side; vit_jax's hybrid pads TF SAME with
    // -inf. Then a 3x3/2 max-pool.
    const bool same = config.resnet_padding == ConvPadding::kSame;
    const ops::Padding2d padding = same ? same_padding_2d(x, 3, 2) : ops::Padding2d{1, 1, 1, 1};
    const double pad_value = same ? -std::numeric_limits<double>::infinity() : 0.0;
    x = ops::padded_max_pool(x, 3, 2, padding, pad_value);
  }
  Residual z{x, {}};
  for (auto& stage : blocks)
    for (auto& block : stage) z = block->forward(z);
  return norm ? norm->forward(z).second : z.sum();  // (B, F, h, w)
}

ResNetV2Impl::ResNetV2Impl(const ModelConfig& c) : ImageClassifierImpl(c) {
  backbone = register_module("backbone", ResNetBackbone(c));
  auto head = register_module("head", std::make_shared<torch::nn::Module>());
  fc = head->register_module("fc", Linear(backbone->out_channels(), c.num_classes));
  if (c.head_zero_init) {
    constant_(fc->weight, 0.0);
    constant_(fc->bias, 0.0);
  }
}

torch::Tensor ResNetV2Impl::features(const torch::Tensor& images) {
  return backbone->forward(images).mean({2, 3});  // (B, F)
}

torch::Tensor ResNetV2Impl::forward(const torch::Tensor& images) {
  return fc->forward(features(images));
}

}  // namespace vitlab
