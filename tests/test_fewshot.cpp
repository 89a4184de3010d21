// Few-shot linear evaluation (the paper's Sec. 4.1): separable features give 100% from one image
// per class, random ones chance; nested, seeded draws; bad K values name the setting.
#include "test_helpers.h"
#include "train/fewshot.h"

using namespace vitlab;

namespace {
// (n, dim) features: each class's direction times `signal`, plus unit noise; labels cycle.
std::pair<torch::Tensor, torch::Tensor> features(int64_t n, int classes, int64_t dim, double signal,
                                                 uint64_t seed) {
  torch::manual_seed(seed);
  auto labels = torch::arange(n, torch::kLong).remainder(classes);
  auto directions = torch::eye(classes, dim, torch::kDouble);
  auto x = directions.index_select(0, labels) * signal + torch::randn({n, dim}, torch::kDouble) * 0.01;
  return {x, labels};
}

FewShotOptions options(std::vector<int64_t> shots, int seeds = 3) {
  FewShotOptions o;
  o.shots = std::move(shots);
  o.seeds = seeds;
  o.held_out = 200;
  o.source = "test.fewshot";
  return o;
}
}  // namespace

TEST_CASE("few-shot: features that separate the classes give 100% from one image per class", "[fewshot]") {
  const auto [x, y] = features(600, 10, 32, 5.0, 0);
  const auto [xt, yt] = features(300, 10, 32, 5.0, 1);
  const FewShotResult r = fewshot_from_features(x, y, xt, yt, 10, options({1, 5}));
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].shots == 1);
  CHECK(r.rows[0].accuracies.size() == 3);
  CHECK(r.rows[0].mean == 1.0);
  CHECK(r.rows[1].mean == 1.0);
  CHECK(r.rows[0].std == 0.0);
  CHECK(r.feature_dim == 32);
  CHECK(r.test_images == 300);
  const Json j = r.to_json();
  CHECK(j["shots"]["5"]["mean"] == 1.0);
  CHECK(j["shots"]["1"]["accuracies"].size() == 3);
  CHECK(r.summary() == "1-shot 100.00±0.00%, 5-shot 100.00±0.00%");
}

TEST_CASE("few-shot: random features are near chance, and the draws are seeded", "[fewshot]") {
  torch::manual_seed(4);
  const auto y = torch::arange(2000, torch::kLong).remainder(10);
  const auto yt = torch::arange(1000, torch::kLong).remainder(10);
  const auto x = torch::randn({2000, 64}, torch::kDouble), xt = torch::randn({1000, 64}, torch::kDouble);
  const FewShotResult r = fewshot_from_features(x, y, xt, yt, 10, options({1, 10}, 5));
  for (const auto& row : r.rows) {
    INFO(row.shots);
    CHECK(row.mean > 0.05);
    CHECK(row.mean < 0.16);  // chance is 0.10; 1,000 test images: a standard error of about 0.01
  }
  const FewShotResult again = fewshot_from_features(x, y, xt, yt, 10, options({1, 10}, 5));
  CHECK(again.rows[1].accuracies == r.rows[1].accuracies);
}

TEST_CASE("few-shot: K above the smallest class is an error naming the setting", "[fewshot]") {
  auto y = torch::arange(100, torch::kLong).remainder(10);
  y[0] = 1;  // class 0 has 9 images
  const auto x = torch::randn({100, 8});
  REQUIRE_THROWS_WITH_TYPE(fewshot_from_features(x, y, x, y, 10, options({5, 10})), ConfigError,
                           "test.fewshot: 10 images per class, but class 0 has only 9 training images");
  REQUIRE_THROWS_WITH_TYPE(check_fewshot(y, 10, options({})), ConfigError, "test.fewshot: no K given");
  // The regulariser needs held-out training images besides the shots.
  const auto y2 = torch::arange(100, torch::kLong).remainder(10);
  CHECK(fewshot_from_features(x, y2, x, y2, 10, options({9}, 1)).rows.size() == 1);
  REQUIRE_THROWS_WITH_TYPE(fewshot_from_features(x, y2, x, y2, 10, options({10}, 1)), ConfigError,
                           "10 images per class leave no training images to choose the regulariser");
}
