// Training: optimiser and schedule against independent references, loss, checkpoints, errors.
#include "config/model_presets.h"
#include "data/synthetic.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/schedule.h"

using namespace vitlab;

TEST_CASE("schedule: linear warmup, then cosine or linear decay to min_lr", "[train]") {
  TrainConfig c;
  c.epochs = 10;
  c.lr = 1.0;
  c.min_lr = 0.1;
  c.warmup_epochs = 2;
  LrScheduleFn cosine(c, 10);  // 100 steps, 20 warmup
  CHECK(cosine(0) == Approx(1.0 / 20));
  CHECK(cosine(19) == Approx(1.0));
  CHECK(cosine(20) == Approx(1.0));
  CHECK(cosine(60) == Approx(0.1 + 0.9 * 0.5));  // half way through the decay
  CHECK(cosine(100) == Approx(0.1));
  c.schedule = LrSchedule::kLinear;
  LrScheduleFn linear(c, 10);
  CHECK(linear(40) == Approx(0.1 + 0.9 * 0.75));
  c.schedule = LrSchedule::kConstant;
  CHECK(LrScheduleFn(c, 10)(90) == Approx(1.0));
}

namespace {
// Runs `steps` updates of our optimiser and of torch::optim on identical parameters/gradients.
template <typename TorchOpt, typename TorchOptions>
void compare_with_torch(const TrainConfig& cfg, TorchOptions torch_options, bool decay_bias) {
  torch::manual_seed(0);
  auto w0 = torch::randn({4, 3}), b0 = torch::randn({4});
  auto w1 = w0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
  auto w2 = w0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
  Optimizer ours({{"w", w1, true}, {"b", b1, decay_bias}}, cfg);
  // torch::optim with the same per-parameter decay: two groups.
  auto no_decay = torch_options;
  no_decay.weight_decay(decay_bias ? torch_options.weight_decay() : 0.0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w2}, std::make_unique<TorchOptions>(torch_options));
  groups.emplace_back(std::vector<torch::Tensor>{b2}, std::make_unique<TorchOptions>(no_decay));
  TorchOpt reference(groups, torch_options);
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({8, 3});
    for (auto [w, b] : {std::make_pair(w1, b1), std::make_pair(w2, b2)}) {
      auto loss = (torch::matmul(x, w.t()) + b).tanh().square().sum();
      loss.backward();
    }
    ours.step(cfg.lr);
    reference.step();
    w1.mutable_grad() = torch::Tensor();
    b1.mutable_grad() = torch::Tensor();
    reference.zero_grad();
    REQUIRE(torch::allclose(w1, w2, 1e-6, 1e-7));
    REQUIRE(torch::allclose(b1, b2, 1e-6, 1e-7));
  }
  CHECK(ours.steps_taken() == 5);
}
}  // namespace

TEST_CASE("AdamW and SGD match torch::optim (decay skipped where asked)", "[train]") {
  TrainConfig c;
  c.lr = 0.01;
  c.weight_decay = 0.1;
  c.optimizer = OptimizerKind::kAdamW;
  compare_with_torch<torch::optim::AdamW>(
      c, torch::optim::AdamWOptions(0.01).weight_decay(0.1).betas({0.9, 0.999}).eps(1e-8), false);
  c.optimizer = OptimizerKind::kSgd;
  c.momentum = 0.9;
  compare_with_torch<torch::optim::SGD>(c, torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(0.1),
                                        false);
  c.nesterov = true;
  compare_with_torch<torch::optim::SGD>(
      c, torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(0.1).nesterov(true), true);
}

TEST_CASE("soft cross-entropy equals PyTorch's label-smoothed cross-entropy", "[train]") {
  torch::manual_seed(1);
  auto logits = torch::randn({6, 5});
  auto labels = torch::randint(0, 5, {6}, torch::kLong);
  auto targets = torch::one_hot(labels, 5).to(torch::kFloat);
  auto reference = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(0.1));
  CHECK(soft_cross_entropy(logits, targets, 0.1).item<double>() == Approx(reference.item<double>()));
}

TEST_CASE("evaluation on the CPU runs in forwards of at most 64 images, with the same result", "[train]") {
  CHECK(forward_batch_size(torch::kCPU, 512) == 64);
  CHECK(forward_batch_size(torch::kCPU, 10) == 10);
  CHECK(forward_batch_size(torch::Device(torch::kCUDA, 0), 512) == 512);  // GPUs take the batch asked for
  ModelConfig c = find_model_preset("vit_tiny_p4_28").config;
  c.width = 16;
  c.depth = 1;
  c.heads = 2;
  c.mlp_dim = 32;
  const ImageClassifier model = test::random_model(c, 3);
  SyntheticSpec spec;
  spec.test_size = 150;  // 64 + 64 + 22
  const DeviceDataset data(make_synthetic(spec).test, torch::kCPU);
  const Normalizer normalize({0.5}, {0.25}, torch::kCPU);
  const EvalResult whole = evaluate(*model, data, normalize, 512, false);
  const EvalResult small = evaluate(*model, data, normalize, 7, false);
  CHECK(whole.count == 150);
  CHECK(whole.accuracy == small.accuracy);
  CHECK(whole.loss == Approx(small.loss).epsilon(1e-6));
  // The sums are over every image: the loss is the mean over all 150, not over the last forward.
  torch::NoGradGuard no_grad;
  model->eval();
  const auto logits = model->forward(normalize(data.images()));
  CHECK(whole.loss == Approx(torch::nn::functional::cross_entropy(logits, data.labels()).item<double>()).epsilon(1e-5));
}

TEST_CASE("checkpoints: round trip, version check, corrupt files, model mismatch", "[train]") {
  test::TempDir dir;
  auto model = build_model(find_model_preset("vit_tiny_p4_28").config);
  Checkpoint c;
  c.config = Json{{"k", 1}};
  c.model = module_state(*model);
  c.optimizer = {{"step", torch::full({}, 7, torch::kLong)}};
  c.epochs_done = 3;
  c.history = Json::array({Json{{"epoch", 1}}});
  save_checkpoint(dir.file("a.pt"), c);
  auto back = load_checkpoint(dir.file("a.pt"));
  CHECK(back.epochs_done == 3);
  CHECK(back.config == c.config);
  CHECK(back.history == c.history);
  REQUIRE(back.model.size() == c.model.size());
  for (size_t i = 0; i < c.model.size(); ++i) {
    CHECK(back.model[i].first == c.model[i].first);
    CHECK(torch::equal(back.model[i].second, c.model[i].second));
  }
  // No temporary files are left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 1);

  // A checkpoint from a newer vitlab: only its version field differs in what the loader reads first.
  torch::serialize::OutputArchive newer;
  newer.write("vitlab_format_version", c10::IValue(int64_t(99)));
  newer.save_to(dir.file("v99.pt"));
  REQUIRE_THROWS_WITH_TYPE(load_checkpoint(dir.file("v99.pt")), IoError,
                           "checkpoint format version 99, this vitlab reads versions 1 and 2");
  test::write_text(dir.file("junk.pt"), "not a zip archive at all");
  REQUIRE_THROWS_WITH_TYPE(load_checkpoint(dir.file("junk.pt")), IoError, "junk.pt: not a valid LibTorch archive");
  REQUIRE_THROWS_WITH_TYPE(load_checkpoint(dir.file("none.pt")), IoError, "none.pt: no such checkpoint");
  // Truncated: the first half of a real checkpoint.
  std::string bytes = test::read_text(dir.file("a.pt"));
  test::write_text(dir.file("half.pt"), bytes.substr(0, bytes.size() / 2));
  REQUIRE_THROWS_WITH_TYPE(load_checkpoint(dir.file("half.pt")), IoError, "half.pt");

  auto other_config = find_model_preset("vit_tiny_p4_28").config;
  other_config.depth = 2;
  auto other = build_model(other_config);
  REQUIRE_THROWS_WITH_TYPE(load_module_state(*other, c.model, "a.pt"), IoError,
                           "a.pt: weights do not fit this model");
  REQUIRE_THROWS_WITH_TYPE(load_module_state(*other, c.model, "a.pt"), IoError, "unexpected: blocks.2.");
}
