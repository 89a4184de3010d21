// timm's RandAugment operations on tiny images against values computed by hand from PIL's
// definitions (ImageOps, ImageEnhance, Image.transform), the policy's draws, and the spec parser.
#include <cmath>

#include "config/rand_augment_config.h"
#include "data/rand_augment.h"
#include "test_helpers.h"

using namespace vitlab;

namespace {

// (1, n, 3) uint8 from grey values (all three channels equal).
torch::Tensor row(std::vector<int> values) {
  auto t = torch::tensor(values, torch::kInt).to(torch::kUInt8).view({1, -1, 1});
  return t.expand({1, t.size(1), 3}).contiguous();
}

std::vector<int> channel0(const torch::Tensor& hwc) {
  const auto c = hwc.select(2, 0).flatten().to(torch::kInt);
  return std::vector<int>(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
}

torch::Tensor apply(const torch::Tensor& image, RandOp op, double level, bool negate = false,
                    RandAugmentConfig c = {}) {
  return apply_rand_op(image, op, level, negate, c);
}

}  // namespace

TEST_CASE("RandAugment's colour operations against hand-computed values", "[data][rand_augment]") {
  CHECK(channel0(apply(row({10, 200}), RandOp::kInvert, 9)) == std::vector<int>{245, 55});
  // Posterize at level 5 keeps int(5 / 10 * 4) = 2 bits: 200 = 0b11001000 -> 192, 100 -> 64.
  CHECK(channel0(apply(row({200, 100}), RandOp::kPosterize, 5)) == std::vector<int>{192, 64});
  // Solarize at level 5 inverts from int(0.5 * 256) = 128 up.
  CHECK(channel0(apply(row({100, 200}), RandOp::kSolarize, 5)) == std::vector<int>{100, 55});
  // SolarizeAdd at level 10 adds 110 below 128, capped at 255.
  CHECK(channel0(apply(row({100, 20, 200, 150}), RandOp::kSolarizeAdd, 10)) ==
        std::vector<int>{210, 130, 200, 150});
  // AutoContrast: 50..150 stretched to 0..255: 100 -> int(100 * 2.55 - 127.5) = 127.
  CHECK(channel0(apply(row({50, 100, 150}), RandOp::kAutoContrast, 9)) ==
        std::vector<int>{0, 127, 255});
  // Equalize: 300 pixels of 10, 300 of 20, 10 of 30: step = (610 - 10) // 255 = 2; 10 -> (1 + 0)
  // // 2 = 0, 20 -> (1 + 300) // 2 = 150, 30 -> (1 + 600) // 2 = 300, capped at 255.
  std::vector<int> values(300, 10);
  values.insert(values.end(), 300, 20);
  values.insert(values.end(), 10, 30);
  const auto equalized = channel0(apply(row(values), RandOp::kEqualize, 9));
  CHECK((equalized[0] == 0 && equalized[300] == 150 && equalized[609] == 255));
  // Brightness: factor level / 10 * 1.8 + 0.1 against black: 0.1 x 200 = 20; 1.9 x 100 = 190,
  // 1.9 x 200 -> 255.
  CHECK(channel0(apply(row({200}), RandOp::kBrightness, 0)) == std::vector<int>{20});
  CHECK(channel0(apply(row({100, 200}), RandOp::kBrightness, 10)) == std::vector<int>{190, 255});
  // Color at factor 0.1 of (200, 100, 50): L = (200 19595 + 100 38470 + 50 7471 + 32768) >> 16
  // = 124; each channel int(124 + 0.1 (v - 124)) = 131, 121, 116.
  auto rgb = torch::tensor({200, 100, 50}, torch::kInt).to(torch::kUInt8).view({1, 1, 3});
  CHECK(
      apply(rgb, RandOp::kColor, 0).flatten().equal(torch::tensor({131, 121, 116}, torch::kUInt8)));
  // Contrast at factor 0.1 against the L mean 150: 100 -> int(150 - 5) = 145, 200 -> 155.
  CHECK(channel0(apply(row({100, 200}), RandOp::kContrast, 0)) == std::vector<int>{145, 155});
  // Sharpness at factor 1.9 of a 3x3 image with 130 in the middle: SMOOTH makes the middle
  // 5 x 130 / 13 = 50 (the border stays 0); int(50 + 1.9 (130 - 50)) = 202.
  auto dot = torch::zeros({3, 3, 3}, torch::kUInt8);
  dot[1][1].fill_(130);
  const auto sharp = apply(dot, RandOp::kSharpness, 10);
  CHECK(sharp[1][1][0].item<int>() == 202);
  CHECK(sharp.sum().item<int>() == 3 * 202);
}

TEST_CASE("RandAugment's geometric operations against hand-computed values",
          "[data][rand_augment]") {
  RandAugmentConfig c;
  c.fill = {7, 8, 9};
  c.translate_pct = 0.25;  // level 10 of a 4-wide image: 1 pixel
  CHECK(channel0(apply(row({10, 20, 30, 40}), RandOp::kTranslateXRel, 10, false, c)) ==
        std::vector<int>{20, 30, 40, 7});
  CHECK(channel0(apply(row({10, 20, 30, 40}), RandOp::kTranslateXRel, 10, true, c)) ==
        std::vector<int>{7, 10, 20, 30});
  const auto down = apply(row({10, 20, 30, 40}).permute({1, 0, 2}).contiguous(),
                          RandOp::kTranslateYRel, 10, false, c);  // (4, 1, 3)
  CHECK(channel0(down) == std::vector<int>{20, 30, 40, 7});
  CHECK(down[3][0][2].item<int>() == 9);
  // ShearX at level 5 (0.15) of rows [0, 100]: row y samples x + 0.15 (y + 0.5) between pixel
  // centres, rounded down: y = 0 -> 0.075 of the way to 100 = 7 (then 100, clamped at the
  // edge); y = 1 -> 22.
  auto grid = torch::zeros({2, 2, 3}, torch::kUInt8);
  grid.select(1, 1).fill_(100);
  CHECK(channel0(apply(grid, RandOp::kShearX, 5, false, c)) == std::vector<int>{7, 100, 22, 100});
  // Rotate 30 degrees of a constant 4x4: the corners' centres fall outside (filled), the middle
  // stays.
  const auto turned =
      apply(torch::full({4, 4, 3}, 77, torch::kUInt8), RandOp::kRotate, 10, false, c);
  CHECK(turned[0][0][0].item<int>() == 7);
  CHECK(turned[0][3][1].item<int>() == 8);
  CHECK(turned[1][1][0].item<int>() == 77);
  CHECK(turned[2][2][2].item<int>() == 77);
  // Counter-clockwise: the pixel right of the middle samples the input below-right of it.
  auto marked = torch::zeros({5, 5, 3}, torch::kUInt8);
  marked[3][3].fill_(200);  // below-right of the centre (2.5, 2.5)
  CHECK(apply(marked, RandOp::kRotate, 10, false, c)[2][3][0].item<int>() > 0);
}

TEST_CASE("the RandAugment policy: seeded draws, timm's spec strings, errors naming the key",
          "[data][rand_augment]") {
  const RandAugmentConfig c =
      parse_rand_augment("rand-m9-mstd0.5", "", "data.augment.rand_augment");
  CHECK((c.magnitude == 9 && c.magnitude_std == 0.5 && c.num_ops == 2 && c.prob == 0.5));
  const RandAugmentConfig d = parse_rand_augment("rand-m7-n3-mstd0-p1-mmax12", "", "x");
  CHECK((d.magnitude == 7 && d.num_ops == 3 && d.magnitude_std == 0 && d.prob == 1 &&
         d.magnitude_max == 12));
  // timm's defaults for what a spec leaves out: m 10, mstd 0, mmax 10; mstd above 100 draws
  // the magnitude uniformly in [0, m], and mmax0 means 10.
  const RandAugmentConfig e = parse_rand_augment("rand-n1-mstd101-mmax0", "", "x");
  CHECK((e.magnitude == 10 && std::isinf(e.magnitude_std) && e.magnitude_max == 10));
  for (const std::string bad : {"rand-m9-inc1", "augmix-m5", "rand-m", "rand-n0", "rand_m9"}) {
    INFO(bad);
    try {
      parse_rand_augment(bad, "run.json", "data.augment.rand_augment");
      FAIL("accepted");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("data.augment.rand_augment") != std::string::npos);
    }
  }
  CHECK(rand_ops().size() == 15);
  auto image = torch::randint(0, 256, {16, 16, 3}, torch::kUInt8);
  std::mt19937_64 a(3), b(3);
  RandAugmentConfig always = c;
  always.prob = 1.0;
  const auto x = rand_augment(image, always, a), y = rand_augment(image, always, b);
  CHECK(x.equal(y));
  CHECK(!x.equal(image));  // two operations at magnitude ~9 change a random image
  CHECK(x.sizes() == image.sizes());
}
