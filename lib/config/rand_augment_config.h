// timm's RandAugment settings (data.augment.rand_augment; the operations are in
// data/rand_augment.h), parsed from timm's spec string.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace vitlab {

struct RandAugmentConfig {
  // timm's defaults for the parts a spec leaves out.
  int num_ops = 2;              // "n"
  double magnitude = 10;        // "m"
  double magnitude_std = 0;     // "mstd"; above 100: uniform in [0, m] (infinity here)
  double magnitude_max = 10;    // "mmax"; 0 means 10
  double prob = 0.5;            // "p"
  double translate_pct = 0.45;  // timm's hparams translate_pct
  std::array<uint8_t, 3> fill = {124, 116, 104};  // timm: round(255 * IMAGENET_DEFAULT_MEAN)
};

// timm's spec string: "rand" then "-"-separated m<float>, n<int>, mstd<float>, mmax<float>,
// p<float>, e.g. "rand-m9-mstd0.5". Throws ConfigError naming `path` for anything else
// (timm's "inc" and "w" variants are not supported).
RandAugmentConfig parse_rand_augment(const std::string& spec, const std::string& source,
                                     const std::string& path);

}  // namespace vitlab
