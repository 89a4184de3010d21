// timm's RandAugment (data/auto_augment.py, Cubuk et al. 2019 as timm configures it for ViT/DeiT
// recipes: "rand-m9-mstd0.5"): per image, `num_ops` operations drawn with replacement from the 15
// below, each applied with probability `prob` at a magnitude drawn from N(magnitude,
// magnitude_std) clipped to [0, magnitude_max] on timm's 0-10 scale. The operations follow PIL's
// definitions (ImageOps, ImageEnhance, Image.transform), which timm runs, on (H, W, 3) uint8
// images; geometric ones sample bilinearly (timm draws bilinear or bicubic) and fill with the
// data set's mean colour.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "config/rand_augment_config.h"

namespace vitlab {

enum class RandOp {
  kAutoContrast,
  kEqualize,
  kInvert,
  kRotate,
  kPosterize,
  kSolarize,
  kSolarizeAdd,
  kColor,
  kContrast,
  kBrightness,
  kSharpness,
  kShearX,
  kShearY,
  kTranslateXRel,
  kTranslateYRel
};

// timm's _RAND_TRANSFORMS, in its order, with its names.
const std::vector<std::pair<RandOp, std::string>>& rand_ops();

// One operation at level `magnitude` (0-10; signed operations negated when `negate`).
torch::Tensor apply_rand_op(const torch::Tensor& hwc, RandOp op, double magnitude, bool negate,
                            const RandAugmentConfig& config);

// The whole policy on one image, drawing from `rng`.
torch::Tensor rand_augment(const torch::Tensor& hwc, const RandAugmentConfig& config,
                           std::mt19937_64& rng);

}  // namespace vitlab
