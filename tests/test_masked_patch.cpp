// Masked patch prediction (the paper's Sec. 4.6, B.1.2): the corruption's proportions, the colour
// targets, the loss over corrupted patches only, the [mask] embedding's gradient and weight decay,
// every model with patch tokens, and that training lowers the loss.
#include "config/model_presets.h"
#include "config/run_config.h"
#include "data/batcher.h"
#include "data/synthetic.h"
#include "models/parts.h"
#include "models/vit.h"
#include "test_helpers.h"
#include "train/objective.h"
#include "train/optimizer.h"
#include "train/train_step.h"

using namespace vitlab;

namespace {
RunConfig masked_run(Json model = Json::object(), Json masked = Json::object()) {
  Json m = {{"name", "vit_tiny_p4_28"}, {"image_size", 16}, {"patch_size", 4}, {"width", 32},
            {"depth", 2}, {"heads", 2}, {"mlp_dim", 64}, {"in_channels", 3}, {"num_classes", 10}};
  if (model.is_object()) m.update(model);
  if (!masked.is_object()) masked = Json::object();
  return read_run_config(Json{{"device", "cpu"},
                              {"model", m},
                              {"data", {{"dataset", "synthetic"}, {"synthetic_image_size", m["image_size"]},
                                        {"synthetic_channels", 3}}},
                              {"train", {{"objective", "masked_patch"}, {"masked_patch", masked}}}});
}

ViTImpl& vit_of(const ImageClassifier& model) { return dynamic_cast<ViTImpl&>(*model); }
}  // namespace

TEST_CASE("corruption: round(rate N) patches an image, then 80% [mask], 10% another patch, 10% kept",
          "[masked_patch]") {
  torch::manual_seed(0);
  ImageClassifier model = build_run_model(masked_run());
  auto& head = *vit_of(model).masked_patch;
  torch::NoGradGuard no_grad;
  int64_t chosen = 0, masked = 0, other = 0, kept = 0, unchosen_changed = 0;
  const int64_t b = 32, n = 16, d = 32;
  for (int draw = 0; draw < 200; ++draw) {
    auto x = torch::randn({b, n, d});
    const CorruptedPatches c = head.corrupt(x);
    REQUIRE(c.corrupted.sum(1).eq(8).all().item<bool>());  // round(0.5 * 16) in every image
    auto same = c.patches.eq(x).all(2);
    auto is_mask = c.patches.eq(head.mask_token.view({1, 1, d})).all(2);
    chosen += c.corrupted.sum().item<int64_t>();
    masked += (c.corrupted & is_mask).sum().item<int64_t>();
    kept += (c.corrupted & same).sum().item<int64_t>();
    other += (c.corrupted & ~same & ~is_mask).sum().item<int64_t>();
    unchosen_changed += (~c.corrupted & ~same).sum().item<int64_t>();
  }
  CHECK(unchosen_changed == 0);
  CHECK(chosen == 200 * b * 8);
  // 51,200 corrupted patches: the shares are within 0.01 of 80/10/10 (about 7 standard errors).
  CHECK(double(masked) / chosen == Approx(0.8).margin(0.01));
  CHECK(double(other) / chosen == Approx(0.1).margin(0.01));
  CHECK(double(kept) / chosen == Approx(0.1).margin(0.01));

  const RunConfig low = masked_run({}, {{"corruption_rate", 0.15}});
  const ImageClassifier model15 = build_run_model(low);
  auto& h15 = *vit_of(model15).masked_patch;
  CHECK(h15.corrupt(torch::randn({4, n, d})).corrupted.sum(1).eq(2).all().item<bool>());  // round(2.4)
}

TEST_CASE("colour targets: 3 bits per channel of the patch's mean colour, L2 targets are pixels",
          "[masked_patch]") {
  // A 2x2 grid of 4x4 patches, RGB, in [0, 1] pixel units, then normalised with mean 0.5, std 0.25.
  auto pixels = torch::zeros({1, 3, 8, 8});
  pixels.index_put_({0, 0, torch::indexing::Slice(0, 4), torch::indexing::Slice(0, 4)}, 1.0);  // red
  pixels.index_put_({0, 2, torch::indexing::Slice(0, 4), torch::indexing::Slice(0, 4)}, 0.3);  // + a little blue
  pixels.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(0, 4), torch::indexing::Slice(4, 8)}, 0.5);
  // Bottom-left: half the patch white, half black: mean 0.5 in every channel.
  pixels.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(4, 6), torch::indexing::Slice(0, 4)}, 1.0);
  const auto mean = torch::full({3}, 0.5), std = torch::full({3}, 0.25);
  const auto images = (pixels - 0.5) / 0.25;
  MaskedPatchGeometry g;
  g.grid = 2;
  g.region = 4;
  g.channels = 3;
  const auto classes = masked_patch_targets(images, g, mean, std);
  REQUIRE(classes.sizes() == torch::IntArrayRef({1, 4}));
  CHECK(classes[0][0].item<int64_t>() == 7 * 64 + 0 * 8 + 2);  // (1, 0, 0.3) -> bins (7, 0, 2)
  CHECK(classes[0][1].item<int64_t>() == 4 * 64 + 4 * 8 + 4);  // 0.5 -> bin 4
  CHECK(classes[0][2].item<int64_t>() == 4 * 64 + 4 * 8 + 4);
  CHECK(classes[0][3].item<int64_t>() == 0);                   // black
  CHECK(g.outputs() == 512);
  g.channels = 1;
  CHECK(g.outputs() == 8);
  g.channels = 3;

  g.target = MaskedPatchTarget::kDownsized4x4;
  const auto small = masked_patch_targets(images, g, mean, std);  // (1, 4, 3 * 16): the patch itself
  REQUIRE(small.sizes() == torch::IntArrayRef({1, 4, 48}));
  CHECK(torch::equal(small[0][3], images[0].slice(1, 4, 8).slice(2, 4, 8).reshape({-1})));
  g.target = MaskedPatchTarget::kFullPatch;
  CHECK(g.outputs() == 48);
  CHECK(torch::equal(masked_patch_targets(images, g, mean, std), small));
}

TEST_CASE("masked-patch loss: uncorrupted patches contribute nothing", "[masked_patch]") {
  torch::manual_seed(1);
  MaskedPatchPrediction p;
  p.predictions = torch::randn({3, 5, 8}, torch::requires_grad());
  p.corrupted = torch::rand({3, 5}) < 0.5;
  const auto targets = torch::randint(8, {3, 5}, torch::kLong);
  const ObjectiveOutput out = masked_patch_loss(p, targets, MaskedPatchConfig{}, 0.0);
  out.loss.backward();
  const auto grad_norm = p.predictions.grad().abs().sum(2);  // (B, N)
  CHECK(grad_norm.masked_select(~p.corrupted).abs().max().item<double>() == 0.0);
  CHECK(grad_norm.masked_select(p.corrupted).min().item<double>() > 0.0);
  // The value: the mean cross-entropy over the corrupted patches.
  const auto ce = torch::nn::functional::cross_entropy(
      p.predictions.detach().reshape({-1, 8}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  const auto keep = p.corrupted.reshape({-1});
  CHECK(out.loss.item<double>() == Approx(ce.masked_select(keep).mean().item<double>()).epsilon(1e-5));
  CHECK(out.scored.item<int64_t>() == keep.sum().item<int64_t>());
}

TEST_CASE("the [mask] embedding gets a gradient and no weight decay, every patch-token model trains",
          "[masked_patch]") {
  std::vector<Json> models;
  for (const auto& pos : position_embedding_parts())
    for (const char* pool : {"cls", "gap"})
      models.push_back({{"pos_embed", pos.name}, {"pool", pool}, {"class_token", std::string(pool) == "cls"}});
  models.push_back({{"name", "hybrid_r50_b16"}, {"image_size", 32}, {"patch_size", 1}, {"resnet_layers", {1, 1}}});
  for (const auto& m : models) {
    DYNAMIC_SECTION(m.dump()) {
      torch::manual_seed(2);
      const RunConfig run = masked_run(m);
      ImageClassifier model = build_run_model(run);
      auto& vit = vit_of(model);
      const int64_t size = run.model.image_size;
      const TrainObjective objective(run.train, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}, torch::kCPU);
      const auto images = torch::randn({4, 3, size, size});
      const ObjectiveOutput out = objective(*model, images, torch::Tensor());
      REQUIRE(std::isfinite(out.loss.item<double>()));
      CHECK(out.scored.item<int64_t>() == 4 * std::llround(0.5 * run.model.num_patches()));
      out.loss.backward();
      REQUIRE(vit.masked_patch->mask_token.grad().defined());
      CHECK(vit.masked_patch->mask_token.grad().abs().sum().item<double>() > 0);
      for (const auto& p : parameter_groups(*model))
        if (p.param.is_same(vit.masked_patch->mask_token)) CHECK_FALSE(p.decay);
      // Declared by its owner, not only exempt as a 1-D tensor.
      REQUIRE(vit.masked_patch->no_weight_decay().size() == 1);
      CHECK(vit.masked_patch->no_weight_decay()[0].is_same(vit.masked_patch->mask_token));
      CHECK(WeightDecayRule(*model).applies(vit.masked_patch->proj->weight));
    }
  }
}

TEST_CASE("a few CPU steps lower the masked-patch loss on synthetic data", "[masked_patch][train]") {
  torch::manual_seed(3);
  RunConfig run = masked_run();
  run.train.lr = 3e-3;
  run.train.weight_decay = 0.0;
  ImageClassifier model = build_run_model(run);
  Optimizer optimizer(parameter_groups(*model), run.train);
  const std::vector<double> mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25};
  TrainStep step(model, optimizer, run.train, TrainObjective(run.train, mean, std, torch::kCPU),
                 torch::kCPU, false);
  // 32 images of the synthetic data set (class patterns plus noise), normalised.
  SyntheticSpec spec;
  spec.train_size = 32;
  spec.image_size = 16;
  spec.channels = 3;
  const auto uint8_images = make_synthetic(spec).train.images;  // (32, 3, 16, 16)
  const auto images = normalize(uint8_images, mean, std);
  const TrainObjective eval(run.train, mean, std, torch::kCPU);
  auto loss_now = [&] {
    torch::NoGradGuard no_grad;
    model->eval();
    torch::manual_seed(9);
    const double l = eval(*model, images, torch::Tensor()).loss.item<double>();
    model->train();
    return l;
  };
  const double before = loss_now();
  for (int i = 0; i < 40; ++i) step.run(images, torch::Tensor(), run.train.lr);
  const double after = loss_now();
  CHECK(after < before - 0.5);
}

TEST_CASE("masked_patch config errors name the key", "[masked_patch][config]") {
  REQUIRE_THROWS_WITH_TYPE(masked_run({}, {{"corruption_rate", 0.0}}), ConfigError,
                           "train.masked_patch.corruption_rate: 0 is outside (0, 1)");
  REQUIRE_THROWS_WITH_TYPE(masked_run({}, {{"corruption_rate", 1.0}}), ConfigError,
                           "train.masked_patch.corruption_rate: 1 is outside (0, 1)");
  REQUIRE_THROWS_WITH_TYPE(masked_run({}, {{"target", "rgb"}}), ConfigError,
                           "train.masked_patch.target: unknown value \"rgb\"");
  REQUIRE_THROWS_WITH_TYPE(masked_run({{"name", "bit_r26_28"}}), ConfigError,
                           "train.objective: \"masked_patch\" needs a model with patch tokens");
  Json mixed = {{"device", "cpu"}, {"model", {{"name", "vit_tiny_p4_28"}}},
                {"data", {{"augment", {{"mixup_alpha", 0.2}}}}}, {"train", {{"objective", "masked_patch"}}}};
  REQUIRE_THROWS_WITH_TYPE(read_run_config(mixed), ConfigError, "data.augment.mixup_alpha: mixes labels");
}

TEST_CASE("masked patches on the CUDA fast path: a captured step draws new corruptions every replay",
          "[masked_patch][cuda]") {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(4);
  for (const char* model : {"vit_tiny_p4_28", "hybrid_r50_b16"}) {
    DYNAMIC_SECTION(model) {
      Json m = {{"name", model}};
      if (std::string(model) == "hybrid_r50_b16") m.update({{"image_size", 32}, {"patch_size", 1}, {"resnet_layers", {1, 1}}});
      RunConfig run = masked_run(m);
      run.train.precision = Precision::kBf16;
      run.train.lr = 2e-3;
      const torch::Device cuda(torch::kCUDA);
      ImageClassifier net = build_run_model(run);
      net->to(cuda);
      Optimizer optimizer(parameter_groups(*net), run.train, true);
      const std::vector<double> mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25};
      TrainStep step(net, optimizer, run.train, TrainObjective(run.train, mean, std, cuda), cuda, true);
      const int64_t size = run.model.image_size;
      auto colours = torch::rand({32, 3, size / 4, size / 4}, cuda);
      const auto images = (torch::upsample_nearest2d(colours, {size, size}) - 0.5) / 0.25;
      std::vector<double> losses;
      for (int i = 0; i < 60; ++i) {
        const StepOutput out = step.run(images, torch::Tensor(), run.train.lr);
        losses.push_back(out.loss.item<double>());
        REQUIRE(out.correct.defined());
      }
      CHECK(step.graphed());
      for (double l : losses) REQUIRE(std::isfinite(l));
      // The same images every step: equal losses on consecutive replays would mean a frozen draw.
      int equal = 0;
      for (size_t i = 5; i + 1 < losses.size(); ++i) equal += losses[i] == losses[i + 1];
      CHECK(equal < 3);
      CHECK(losses.back() < losses[3] - 0.3);
    }
  }
}
