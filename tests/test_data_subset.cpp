// Stratified subsets and splits, load_data (resize, mean/std), resize_images.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/load_data.h"
#include "data/resize.h"
#include "data/subset.h"

using namespace vitlab;

namespace {

// A data set whose class k has 10 (k + 1) images (k = 0..3: 100 images) and whose image i
// encodes i in its two pixels, so the original rows can be recovered after subsetting.
Dataset numbered_dataset(const std::string& name) {
  std::vector<int64_t> labels;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 10 * (k + 1); ++j) labels.push_back(k);
  const int64_t n = static_cast<int64_t>(labels.size());
  Dataset d;
  d.images = torch::zeros({n, 1, 1, 2}, torch::kUInt8);  // (N, 1, 1, 2)
  for (int64_t i = 0; i < n; ++i) {
    d.images[i][0][0][0] = static_cast<int>(i % 256);
    d.images[i][0][0][1] = static_cast<int>(i / 256);
  }
  d.labels = torch::tensor(labels, torch::kInt64);
  d.num_classes = 4;
  d.class_names = {"a", "b", "c", "d"};
  d.name = name;
  return d;
}

// The original row numbers of a subset of numbered_dataset.
std::vector<int64_t> rows_of(const Dataset& d) {
  const torch::Tensor p = d.images.flatten(1).to(torch::kInt64);  // (N, 2)
  const torch::Tensor ids = p.select(1, 0) + 256 * p.select(1, 1);
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

std::vector<int64_t> counts_of(const Dataset& d) {
  return class_counts(d.labels, d.num_classes);
}

template <typename F>
std::string config_error_message(F body) {
  try {
    body();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no ConfigError";
}

}  // namespace

TEST_CASE("proportional quotas use the largest remainder", "[data]") {
  CHECK(proportional_quotas({10, 20, 30, 40}, 10) == std::vector<int64_t>{1, 2, 3, 4});
  // 7 of (10, 20, 30, 40): exact 0.7, 1.4, 2.1, 2.8 -> floors 0,1,2,2 + the two largest remainders.
  CHECK(proportional_quotas({10, 20, 30, 40}, 7) == std::vector<int64_t>{1, 1, 2, 3});
  CHECK(proportional_quotas({3, 3, 3}, 2) == std::vector<int64_t>{1, 1, 0});  // ties: lower class
  CHECK(proportional_quotas({5, 0, 5}, 10) == std::vector<int64_t>{5, 0, 5});
}

TEST_CASE("stratified subsets: exact per-class counts, seeded, disjoint val", "[data]") {
  DatasetSplits data{numbered_dataset("toy/train"), numbered_dataset("toy/test")};
  DataConfig config;
  config.subset_seed = 11;

  SECTION("train_size is split in proportion to the classes") {
    config.train_size = 50;
    const SubsetSplits s = make_subsets(data, config);
    CHECK(counts_of(s.train) == std::vector<int64_t>{5, 10, 15, 20});
    CHECK(s.val.size() == 0);
    CHECK(s.test.size() == 100);
    // Each chosen row keeps its own label.
    const auto rows = rows_of(s.train);
    for (size_t i = 0; i < rows.size(); ++i)
      CHECK(s.train.labels[i].item<int64_t>() == data.train.labels[rows[i]].item<int64_t>());
  }
  SECTION("per_class takes that many of each class") {
    config.per_class = 7;
    const SubsetSplits s = make_subsets(data, config);
    CHECK(counts_of(s.train) == std::vector<int64_t>{7, 7, 7, 7});
  }
  SECTION("same seed, same subset; another seed, another subset") {
    config.train_size = 40;
    const auto a = rows_of(make_subsets(data, config).train);
    const auto b = rows_of(make_subsets(data, config).train);
    config.subset_seed = 12;
    const auto c = rows_of(make_subsets(data, config).train);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(std::is_sorted(a.begin(), a.end()));
    CHECK(std::set<int64_t>(a.begin(), a.end()).size() == a.size());
  }
  SECTION("validation is held out of the subset, stratified and disjoint") {
    config.train_size = 60;
    config.val_size = 20;
    const SubsetSplits s = make_subsets(data, config);
    CHECK(s.train.size() == 40);
    CHECK(s.val.size() == 20);
    CHECK(counts_of(s.val) == std::vector<int64_t>{2, 4, 6, 8});
    CHECK(counts_of(s.train) == std::vector<int64_t>{4, 8, 12, 16});
    const auto train_rows = rows_of(s.train), val_rows = rows_of(s.val);
    std::set<int64_t> all(train_rows.begin(), train_rows.end());
    for (int64_t r : val_rows) CHECK(all.count(r) == 0);
    all.insert(val_rows.begin(), val_rows.end());
    // Together they are exactly the 60-image subset drawn without val_size.
    config.val_size = 0;
    const auto subset = rows_of(make_subsets(data, config).train);
    CHECK(std::vector<int64_t>(all.begin(), all.end()) == subset);
  }
  SECTION("test_size subsets the test set") {
    config.test_size = 30;
    const SubsetSplits s = make_subsets(data, config);
    CHECK(counts_of(s.test) == std::vector<int64_t>{3, 6, 9, 12});
    CHECK(s.train.size() == 100);
  }
  SECTION("sizes the data cannot satisfy are ConfigErrors naming the key") {
    config.per_class = 15;  // class "a" has only 10
    CHECK_THAT(config_error_message([&] { make_subsets(data, config); }),
               Catch::Contains("data.per_class") && Catch::Contains("\"a\"") &&
                   Catch::Contains("only 10"));
    config.per_class = 0;
    config.train_size = 101;
    CHECK_THAT(config_error_message([&] { make_subsets(data, config); }),
               Catch::Contains("data.train_size"));
    config.train_size = 0;
    config.val_size = 100;
    CHECK_THAT(config_error_message([&] { make_subsets(data, config); }),
               Catch::Contains("data.val_size"));
    config.val_size = 0;
    config.test_size = 1000;
    CHECK_THAT(config_error_message([&] { make_subsets(data, config); }),
               Catch::Contains("data.test_size"));
  }
}

TEST_CASE("resize_images is bilinear and keeps the batch layout", "[data]") {
  // 4x4 image of 2x2 blocks -> 2x2: with align_corners=false each output pixel samples the
  // centre of its block, i.e. the mean of 2x2 inputs.
  torch::Tensor img =
      torch::tensor({10, 10, 20, 20, 10, 10, 20, 20, 30, 30, 0, 100, 30, 30, 100, 200},
                    torch::kUInt8)
          .view({1, 1, 4, 4});
  const torch::Tensor small = resize_images(img, 2, 2);
  CHECK(torch::equal(small, torch::tensor({10, 20, 30, 100}, torch::kUInt8).view({1, 1, 2, 2})));
  const torch::Tensor big = resize_images(torch::full({3, 2, 5, 7}, 77, torch::kUInt8), 9, 11);
  CHECK(big.sizes() == torch::IntArrayRef({3, 2, 9, 11}));
  CHECK(big.scalar_type() == torch::kUInt8);
  CHECK(torch::equal(big, torch::full({3, 2, 9, 11}, 77, torch::kUInt8)));
}

TEST_CASE("load_data: synthetic with resize, computed statistics and mean checks", "[data]") {
  DataConfig config;
  config.dataset = DatasetKind::kSynthetic;
  config.synthetic_classes = 3;
  config.synthetic_train = 90;
  config.synthetic_test = 30;
  config.synthetic_image_size = 12;
  config.synthetic_channels = 3;
  config.val_size = 15;
  config.image_size = 20;
  const DataBundle b = load_data(config);
  CHECK(b.train.images.sizes() == torch::IntArrayRef({75, 3, 20, 20}));
  CHECK(b.val.images.sizes() == torch::IntArrayRef({15, 3, 20, 20}));
  CHECK(b.test.images.sizes() == torch::IntArrayRef({30, 3, 20, 20}));
  CHECK(b.image_size == 20);
  CHECK(b.channels == 3);
  CHECK(b.num_classes == 3);
  // Statistics are those of the final training images.
  const torch::Tensor x = b.train.images.to(torch::kDouble) / 255.0;
  const torch::Tensor mean = x.mean({0, 2, 3});
  const torch::Tensor std = (x - mean.view({1, 3, 1, 1})).pow(2).mean({0, 2, 3}).sqrt();
  REQUIRE(b.mean.size() == 3);
  for (int c = 0; c < 3; ++c) {
    CHECK(b.mean[c] == Approx(mean[c].item<double>()).epsilon(1e-9));
    CHECK(b.std[c] == Approx(std[c].item<double>()).epsilon(1e-9));
  }

  config.mean = {0.5};
  config.std = {0.25};
  CHECK_THAT(
      config_error_message([&] { load_data(config, "run.json"); }),
      Catch::Contains("run.json") && Catch::Contains("data.mean") && Catch::Contains("3 channels"));
  config.mean = {0.1, 0.2, 0.3};
  config.std = {0.4, 0.5, 0.6};
  const DataBundle given = load_data(config);
  CHECK(given.mean == config.mean);
  CHECK(given.std == config.std);
}

TEST_CASE("load_data: Fashion-MNIST subset with standard statistics and upscaling", "[data]") {
  DataConfig config;  // fashion-mnist from the Debian package
  config.train_size = 1000;
  config.val_size = 100;
  config.test_size = 500;
  config.image_size = 32;
  config.subset_seed = 3;
  const DataBundle b = load_data(config);
  CHECK(b.train.size() == 900);
  CHECK(b.val.size() == 100);
  CHECK(b.test.size() == 500);
  // Fashion-MNIST is balanced, so the stratified draws are exactly even.
  CHECK(counts_of(b.val) == std::vector<int64_t>(10, 10));
  CHECK(counts_of(b.test) == std::vector<int64_t>(10, 50));
  CHECK(b.train.images.sizes() == torch::IntArrayRef({900, 1, 32, 32}));
  CHECK(b.mean == std::vector<double>{0.2860});
  CHECK(b.std == std::vector<double>{0.3530});
  CHECK(b.class_names.at(9) == "Ankle boot");
}
