// Device batching, epoch order, normalisation and batch-wise augmentation.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "data/augment.h"
#include "data/batcher.h"
#include "data/random.h"

using namespace vitlab;

namespace {

// n images (C, H, W) whose pixels are all distinct within an image: value (i + 5 c + 3 y + x).
torch::Tensor ramp_images(int64_t n, int64_t c, int64_t h, int64_t w) {
  const torch::Tensor i = torch::arange(n).view({n, 1, 1, 1});
  const torch::Tensor ch = torch::arange(c).view({1, c, 1, 1});
  const torch::Tensor y = torch::arange(h).view({1, 1, h, 1});
  const torch::Tensor x = torch::arange(w).view({1, 1, 1, w});
  return (i + 5 * ch + 3 * y + x + 1).remainder(256).to(torch::kUInt8);  // (N, C, H, W), no 0s
}

Dataset toy_dataset(int64_t n) {
  Dataset d;
  d.images = ramp_images(n, 1, 4, 4);
  d.labels = torch::arange(n, torch::kInt64).remainder(3);
  d.num_classes = 3;
  d.class_names = {"0", "1", "2"};
  d.name = "toy";
  return d;
}

}  // namespace

TEST_CASE("epoch permutation is a pure, reproducible function", "[data]") {
  const auto a = epoch_permutation_indices(7, 3, 1000);
  CHECK(a == epoch_permutation_indices(7, 3, 1000));
  CHECK(a != epoch_permutation_indices(7, 4, 1000));
  CHECK(a != epoch_permutation_indices(8, 3, 1000));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(sorted == expected);
  CHECK(a != expected);
  // Pinned values: the same on every machine and LibTorch version (std::mt19937_64 is exact).
  CHECK(epoch_permutation_indices(0, 0, 8) == std::vector<int64_t>{6, 5, 4, 0, 3, 1, 7, 2});
  const torch::Tensor t = epoch_permutation(7, 3, 1000);
  CHECK(std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + 1000) == a);
}

TEST_CASE("EpochBatches: training drops the partial batch, evaluation keeps it", "[data]") {
  const DeviceDataset data(toy_dataset(10), torch::kCPU);
  REQUIRE(data.size() == 10);
  const EpochBatches train(data, 4, /*shuffle=*/true, /*drop_last=*/true, 5, 2);
  REQUIRE(train.size() == 2);
  const auto order = epoch_permutation_indices(5, 2, 10);
  std::vector<int64_t> seen;
  for (const Batch& b : train) {
    CHECK(b.images.sizes() == torch::IntArrayRef({4, 1, 4, 4}));
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t row = b.indices[i].item<int64_t>();
      seen.push_back(row);
      CHECK(torch::equal(b.images[i], data.images()[row]));
      CHECK(b.labels[i].item<int64_t>() == row % 3);
    }
  }
  CHECK(seen == std::vector<int64_t>(order.begin(), order.begin() + 8));
  // Random access reproduces batch 1 (resume in the middle of an epoch).
  CHECK(torch::equal(train.batch(1).indices,
                     torch::tensor({order[4], order[5], order[6], order[7]})));

  const EpochBatches eval(data, 4, /*shuffle=*/false, /*drop_last=*/false);
  REQUIRE(eval.size() == 3);
  CHECK(eval.batch(2).images.size(0) == 2);
  CHECK(torch::equal(eval.batch(2).indices, torch::tensor({8, 9}, torch::kInt64)));
  CHECK(batches_per_epoch(10, 5, true) == 2);
  CHECK(batches_per_epoch(11, 5, false) == 3);
}

TEST_CASE("normalize maps uint8 to (x / 255 - mean) / std", "[data]") {
  const torch::Tensor batch =
      torch::tensor({0, 255, 51, 0, 255, 102}, torch::kUInt8).view({1, 2, 1, 3});
  const torch::Tensor out = normalize(batch, {0.5, 0.2}, {0.5, 0.4});
  CHECK(out.scalar_type() == torch::kFloat);
  const torch::Tensor expected =
      torch::tensor({-1.0f, 1.0f, -0.6f, -0.5f, 2.0f, 0.5f}).view({1, 2, 1, 3});
  CHECK(torch::allclose(out, expected, 1e-5, 1e-6));
}

TEST_CASE("random crop is a zero-padded shifted copy", "[data]") {
  const torch::Tensor images = ramp_images(6, 2, 5, 7);
  const int p = 2;
  SECTION("known offsets") {
    const torch::Tensor dy = torch::tensor({2, 0, 4, 1, 2, 3}, torch::kInt64);
    const torch::Tensor dx = torch::tensor({2, 0, 4, 3, 1, 0}, torch::kInt64);
    const torch::Tensor out = crop_with_offsets(images, p, dy, dx);
    CHECK(torch::equal(out[0], images[0]));  // offset (p, p) = no shift
    const torch::Tensor padded = torch::constant_pad_nd(images, {p, p, p, p}, 0);
    for (int64_t i = 0; i < 6; ++i) {
      const int64_t y = dy[i].item<int64_t>(), x = dx[i].item<int64_t>();
      CHECK(torch::equal(out[i], padded[i].narrow(1, y, 5).narrow(2, x, 7)));
    }
    // Offset (0, 0): shifted down-right by p, zeros enter at the top-left.
    CHECK(out[1][0][0][0].item<int>() == 0);
    CHECK(out[1][1][p][p].item<int>() == images[1][1][0][0].item<int>());
  }
  SECTION("random offsets: same shape, each image one of the (2p+1)^2 shifts") {
    AugmentRng rng(3);
    const torch::Tensor out = random_crop(images, p, rng);
    REQUIRE(out.sizes() == images.sizes());
    const torch::Tensor padded = torch::constant_pad_nd(images, {p, p, p, p}, 0);
    int shifted = 0;
    for (int64_t i = 0; i < 6; ++i) {
      int matches = 0;
      for (int64_t y = 0; y <= 2 * p; ++y)
        for (int64_t x = 0; x <= 2 * p; ++x)
          if (torch::equal(out[i], padded[i].narrow(1, y, 5).narrow(2, x, 7))) {
            ++matches;
            if (y != p || x != p) ++shifted;
          }
      CHECK(matches == 1);
    }
    CHECK(shifted > 0);
  }
}

TEST_CASE("random flip", "[data]") {
  const torch::Tensor images = ramp_images(5, 3, 4, 6);
  AugmentRng rng(1);
  CHECK(torch::equal(random_flip(images, 1.0, rng), images.flip({3})));
  CHECK(torch::equal(random_flip(images, 0.0, rng), images));
  const torch::Tensor half = random_flip(ramp_images(64, 1, 2, 2), 0.5, rng);
  int flipped = 0;
  const torch::Tensor original = ramp_images(64, 1, 2, 2);
  for (int64_t i = 0; i < 64; ++i) {
    const bool same = torch::equal(half[i], original[i]);
    CHECK((same || torch::equal(half[i], original[i].flip({2}))));
    flipped += same ? 0 : 1;
  }
  CHECK(flipped > 10);
  CHECK(flipped < 54);
}

TEST_CASE("random erasing zeroes one rectangle per image", "[data]") {
  const torch::Tensor ones = torch::ones({32, 2, 16, 16});
  AugmentRng rng(9);
  const torch::Tensor out = random_erasing(ones, 1.0, rng);
  for (int64_t i = 0; i < 32; ++i) {
    const torch::Tensor zero = out[i][0] == 0;  // (H, W)
    CHECK(torch::equal(zero, out[i][1] == 0));  // the same box in every channel
    const int64_t area = zero.sum().item<int64_t>();
    const torch::Tensor rows = zero.any(1).nonzero(), cols = zero.any(0).nonzero();
    REQUIRE(rows.size(0) > 0);
    // A filled rectangle: area = height x width of its bounding box.
    CHECK(area == rows.size(0) * cols.size(0));
    CHECK(area >= 3);    // >= ~2% of 256, after rounding
    CHECK(area <= 100);  // <= ~33% of 256, after rounding
  }
  CHECK(torch::equal(random_erasing(ones, 0.0, rng), ones));
}

TEST_CASE("mixup and cutmix give soft targets that sum to 1", "[data]") {
  const torch::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kInt64);
  // Image i is constant i + 1, so every pixel tells which image it came from.
  const torch::Tensor images =
      (torch::arange(4).view({4, 1, 1, 1}) + 1).to(torch::kFloat).expand({4, 2, 8, 8}).contiguous();
  AugmentRng rng(4);
  SECTION("mixup") {
    const Mixed m = mixup(images, labels, 5, 0.4, rng);
    REQUIRE(m.targets.sizes() == torch::IntArrayRef({4, 5}));
    CHECK(torch::allclose(m.targets.sum(1), torch::ones({4})));
    CHECK(m.lambda > 0.0);
    CHECK(m.lambda < 1.0);
    CHECK(m.targets[0][0].item<double>() == Approx(m.lambda));
    CHECK(m.targets[0][3].item<double>() == Approx(1.0 - m.lambda));
    CHECK(torch::allclose(m.images, images * m.lambda + images.flip({0}) * (1 - m.lambda)));
  }
  SECTION("cutmix: lambda is the share of the image's own pixels") {
    for (int trial = 0; trial < 5; ++trial) {
      const Mixed m = cutmix(images, labels, 4, 1.0, rng);
      CHECK(torch::allclose(m.targets.sum(1), torch::ones({4})));
      const double own = (m.images[0] == 1).to(torch::kDouble).mean().item<double>();
      CHECK(own == Approx(m.lambda));
      CHECK(m.targets[0][0].item<double>() == Approx(m.lambda));
      CHECK(m.targets[0][3].item<double>() == Approx(1.0 - m.lambda));
    }
  }
}

TEST_CASE("Beta draws have the right mean and variance", "[data]") {
  std::mt19937_64 rng(123);
  // Pinned: the same draw on every machine (no implementation-defined distributions).
  CHECK(beta_draw(rng, 0.4, 0.4) == Approx(0.50230772991003159).epsilon(1e-9));
  for (const double a : {0.2, 1.0, 2.5}) {
    double sum = 0, sum_sq = 0;
    int outside = 0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
      const double x = beta_draw(rng, a, a);
      outside += (x < 0.0 || x > 1.0) ? 1 : 0;
      sum += x;
      sum_sq += x * x;
    }
    const double mean = sum / n, var = sum_sq / n - mean * mean;
    CHECK(outside == 0);
    CHECK(mean == Approx(0.5).margin(0.01));
    CHECK(var == Approx(1.0 / (4 * (2 * a + 1))).margin(0.005));  // a^2 / ((2a)^2 (2a + 1))
  }
}

TEST_CASE("augmentation on CUDA matches the CPU", "[data][cuda]") {
  if (!torch::cuda::is_available()) return;  // CPU-only machine: nothing to check
  const torch::Tensor images = ramp_images(16, 3, 8, 8);
  AugmentRng cpu_rng(5), cuda_rng(5);
  const torch::Tensor cpu = random_flip(random_crop(images, 2, cpu_rng), 0.5, cpu_rng);
  const torch::Tensor gpu = random_flip(random_crop(images.cuda(), 2, cuda_rng), 0.5, cuda_rng);
  CHECK(torch::equal(cpu, gpu.cpu()));
  const DeviceDataset data(toy_dataset(12), torch::Device(torch::kCUDA));
  const Batch b = EpochBatches(data, 4, true, true, 3, 1).batch(2);
  CHECK(b.images.is_cuda());
  const auto order = epoch_permutation_indices(3, 1, 12);
  CHECK(torch::equal(b.indices.cpu(),
                     torch::tensor(std::vector<int64_t>(order.begin() + 8, order.end()))));
}
