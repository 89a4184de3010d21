// Per-image crops for streamed image folders, where images differ in size: timm's ImageNet train
// transform (RandomResizedCrop, then horizontal flip) and its eval transform (resize the shorter
// side, then a centre crop). Images are (H, W, 3) uint8 as decoded; outputs (3, size, size) uint8,
// ready to be stacked into a batch. The parameters keep timm's names and defaults.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

namespace vitlab {

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// `box` of a file_height x file_width image on the same image decoded at height x width (a JPEG
// shrunk in the DCT domain): corners scaled down, sides rounded, at least one pixel, inside.
CropBox scale_box(const CropBox& box, int64_t file_height, int64_t file_width, int64_t height,
                  int64_t width);

// timm's RandomResizedCrop(scale=(0.08, 1.0), ratio=(3/4, 4/3)).
struct RandomResizedCropParams {
  double scale_min = 0.08, scale_max = 1.0;             // of the image's area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height, drawn log-uniformly
};

// timm's (and torchvision's) RandomResizedCrop.get_params: up to 10 draws of an area fraction
// (uniform) and an aspect ratio (log-uniform), the first whose box fits at a uniform position;
// else the whole image cropped centrally to the nearest allowed ratio.
CropBox random_resized_crop_box(int64_t height, int64_t width,
                                const RandomResizedCropParams& params, std::mt19937_64& rng);

// The eval crop of timm's transforms_factory: the shorter side scaled to floor(size / crop_pct),
// then a size x size centre crop, here as the box of the original image that becomes the output.
CropBox center_crop_box(int64_t height, int64_t width, int64_t size, double crop_pct);

// One axis of the antialiased bilinear resize, ATen's (and PIL's) separable kernel: output i
// averages the inputs around scale * (i + 0.5) under the triangle filter, widened by the scale
// when shrinking, with the weights normalised to sum 1 (at the borders too). The weights mirror
// ATen's arithmetic (float, with double intermediates where ATen has them); the sums differ from
// F::interpolate(bilinear, antialias=true) only in the last bit (crop_resize says why).
struct AxisWeights {
  std::vector<int64_t> first, count;  // (out,): the first input and how many contribute
  std::vector<float> weights;         // (out, taps)
  int64_t taps = 0;
};
AxisWeights axis_weights(int64_t in, int64_t out);

// The box of `hwc` ((H, W, 3) uint8) resized to out_height x out_width, bilinear with
// antialiasing when shrinking (the triangle filter widened by the scale, as PIL's resize that
// timm's transforms run), rounded to uint8. Mirrored left-right when `flip`. Returns (3, h, w).
// Each output sums, in float, the columns' sums down the rows (axis_weights), in that order:
// crop_resize_on_device (data/device_crop.h) sums the same way on the GPU.
torch::Tensor crop_resize(const torch::Tensor& hwc, const CropBox& box, int64_t out_height,
                          int64_t out_width, bool flip = false);

}  // namespace vitlab
