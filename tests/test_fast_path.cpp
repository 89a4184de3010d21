// The CUDA fast path (fused optimiser kernels + CUDA-graph captured step) computes the same
// function as the plain path. Tagged [cuda]: skipped where no CUDA device exists.
#include "config/model_presets.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/evaluate.h"
#include "train/flops.h"
#include "train/optimizer.h"
#include "train/train_step.h"

using namespace vitlab;

namespace {
// vit_tiny_p4_28 at depth 3 on the first GPU, its weights drawn from the current seed.
ImageClassifier small_vit_on_cuda() {
  ModelConfig c = find_model_preset("vit_tiny_p4_28").config;
  c.depth = 3;
  auto model = build_model(c);
  model->to(torch::Device(torch::kCUDA, 0));
  return model;
}

std::vector<double> losses(bool fast, Precision precision, OptimizerKind kind, int steps) {
  torch::manual_seed(0);
  auto model = small_vit_on_cuda();
  torch::Device device(torch::kCUDA, 0);
  TrainConfig t;
  t.precision = precision;
  t.optimizer = kind;
  t.lr = 1e-3;
  t.grad_clip = 1.0;
  t.label_smoothing = 0.1;
  Optimizer optimizer(parameter_groups(*model), t, fast);
  TrainStep step(model, optimizer, t, TrainObjective(t, {}, {}, device), device, fast);
  std::vector<double> out;
  torch::manual_seed(1);
  for (int i = 0; i < steps; ++i) {
    auto x = torch::randn({64, 1, 28, 28}).to(device);
    auto y = torch::one_hot(torch::randint(0, 10, {64}, torch::kLong), 10).to(torch::kFloat).to(device);
    out.push_back(step.run(x, y, 1e-3 * (i + 1) / steps).loss.item<double>());
  }
  if (fast) CHECK(step.graphed());
  CHECK(optimizer.steps_taken() == steps);
  return out;
}
}  // namespace

TEST_CASE("fast and plain CUDA paths give the same losses step by step", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  for (auto kind : {OptimizerKind::kAdamW, OptimizerKind::kSgd}) {
    // fp32: the paths differ only in kernel fusion, so agreement is near rounding.
    auto plain = losses(false, Precision::kFp32, kind, 12);
    auto fast = losses(true, Precision::kFp32, kind, 12);
    for (size_t i = 0; i < plain.size(); ++i) CHECK(fast[i] == Approx(plain[i]).epsilon(1e-4));
    // bf16: both under the same autocast; rounding of bf16 matmuls differs by kernel choice only.
    auto plain16 = losses(false, Precision::kBf16, kind, 12);
    auto fast16 = losses(true, Precision::kBf16, kind, 12);
    for (size_t i = 0; i < plain16.size(); ++i) CHECK(fast16[i] == Approx(plain16[i]).epsilon(2e-2));
  }
}

TEST_CASE("a captured evaluation replays what the eager forwards compute, with the current weights",
          "[cuda]") {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(4);
  auto model = small_vit_on_cuda();
  torch::Device device(torch::kCUDA, 0);
  Dataset data;  // 1000 images: 3 batches of 256 replay the graph, the last 232 run eagerly
  data.images = torch::randint(0, 256, {1000, 1, 28, 28}, torch::kLong).to(torch::kUInt8);
  data.labels = torch::randint(0, 10, {1000}, torch::kLong);
  data.num_classes = 10;
  const DeviceDataset set(data, device);
  const Normalizer normalize({0.5}, {0.25}, device);
  EvalGraph graph;
  for (int round = 0; round < 2; ++round) {
    const auto eager = evaluate(*model, set, normalize, 256, /*bf16_autocast=*/true);
    const auto captured = evaluate(*model, set, normalize, 256, true, &graph);
    CHECK(captured.count == 1000);
    CHECK(captured.loss == Approx(eager.loss).epsilon(1e-6));
    CHECK(captured.accuracy == eager.accuracy);
    // New weights between evaluations, as after an epoch: the replays read them.
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  // Another model, batch shape or precision does not replay the graph: it runs eagerly, right.
  auto other = small_vit_on_cuda();
  for (auto [m, batch, bf16] : {std::make_tuple(&*other, 256, true), std::make_tuple(&*model, 200, true),
                                std::make_tuple(&*model, 256, false)}) {
    const auto eager = evaluate(*m, set, normalize, batch, bf16);
    const auto through = evaluate(*m, set, normalize, batch, bf16, &graph);
    CHECK(through.loss == Approx(eager.loss).epsilon(1e-6));
    CHECK(through.accuracy == eager.accuracy);
  }
}

TEST_CASE("clip_grad_norm matches PyTorch's clip_grad_norm_", "[train]") {
  torch::manual_seed(2);
  auto a = torch::randn({5, 3}, torch::requires_grad()), b = torch::randn({4}, torch::requires_grad());
  auto a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
  (a.square().sum() * 3 + b.sum()).backward();
  (a2.square().sum() * 3 + b2.sum()).backward();
  auto norm = clip_grad_norm({a, b}, 0.5);
  const double reference = torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{a2, b2}, 0.5);
  CHECK(norm.item<double>() == Approx(reference));
  CHECK(torch::allclose(a.grad(), a2.grad()));
  CHECK(torch::allclose(b.grad(), b2.grad()));
}

TEST_CASE("analytic FLOPs: ViT-B/16 forward is 2 x 17.6 GMACs per image", "[train]") {
  // timm's tables list ViT-B/16 at 224 px as 17.6 GMACs and ResNet(V2)-50 as 4.1 GMACs.
  const double f = forward_flops_per_image(find_model_preset("vit_b16").config);
  CHECK(f / 2e9 == Approx(17.56).epsilon(0.01));
  const double r = forward_flops_per_image(find_model_preset("bit_r50x1").config);
  CHECK(r / 1e9 == Approx(8.2).epsilon(0.03));  // ResNet-50: ~4.1 GMACs
}
