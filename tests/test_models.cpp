// The model zoo: every factory entry builds and trains; the ablation knobs do what the paper says.
#include "config/model_presets.h"
#include "models/factory.h"
#include "models/resnetv2.h"
#include "models/vit.h"
#include "ops/attention.h"
#include "test_helpers.h"

using namespace vitlab;

namespace {
// The smallest input each preset accepts: a 2x2 token grid for transformers, 32 px for ResNets.
int small_image_size(const ModelConfig& c) {
  switch (c.family) {
    case ModelFamily::kViT: return 2 * c.patch_size;
    case ModelFamily::kHybrid: return 2 * c.patch_size * c.stem_stride();
    case ModelFamily::kResNet: return 32;
  }
  return 32;
}

ModelConfig tiny_vit(const std::string& pos = "learned_1d") {
  ModelConfig c = find_model_preset("vit_tiny_p4_28").config;
  c.width = 32;
  c.heads = 4;
  c.depth = 2;
  c.mlp_dim = 64;
  c.image_size = 16;  // 4x4 grid of patch 4
  c.pos_embed = pos;
  c.validate();
  return c;
}

std::shared_ptr<ViTImpl> as_vit(const ImageClassifier& m) { return std::dynamic_pointer_cast<ViTImpl>(m); }
}  // namespace

TEST_CASE("trunc_normal_: normal(0, std) truncated to [-2, 2]", "[models]") {
  torch::manual_seed(0);
  auto small = torch::empty({200000});
  trunc_normal_(small, 0.02);  // ViT's init: the bounds are 100 std away, a plain normal
  CHECK(std::abs(small.mean().item<double>()) < 2e-4);
  CHECK(std::abs(small.std().item<double>() - 0.02) < 2e-4);
  // std 1.5: a quarter of the draws fall outside and are redrawn. The truncated normal's std is
  // 1.5 * sqrt(1 - 2 b phi(b) / (2 Phi(b) - 1)) with b = 2 / 1.5, i.e. 1.0230.
  auto wide = torch::empty({200000});
  trunc_normal_(wide, 1.5);
  CHECK(wide.abs().max().item<double>() <= 2.0);
  CHECK(std::abs(wide.std().item<double>() - 1.0230) < 0.01);
  CHECK(std::abs(wide.mean().item<double>()) < 0.01);
}

TEST_CASE("every factory entry builds, runs forward and backward with finite values", "[models]") {
  for (const auto& preset : model_presets()) {
    DYNAMIC_SECTION(preset.name) {
      torch::manual_seed(0);
      ModelConfig c = preset.config;
      c.image_size = small_image_size(c);
      c.num_classes = 7;
      auto model = build_model(c);
      model->train();
      auto x = torch::randn({2, c.in_channels, c.image_size, c.image_size});
      auto logits = model->forward(x);
      REQUIRE(logits.sizes() == torch::IntArrayRef({2, 7}));
      REQUIRE(torch::isfinite(logits).all().item<bool>());
      logits.square().sum().backward();
      int64_t with_grad = 0, total = 0;
      for (const auto& p : model->parameters()) {
        ++total;
        if (p.grad().defined()) {
          REQUIRE(torch::isfinite(p.grad()).all().item<bool>());
          ++with_grad;
        }
      }
      // Every parameter takes part in the forward pass (zero-initialised heads still get grads).
      CHECK(with_grad == total);
    }
  }
}

TEST_CASE("parameter counts match the published models", "[models]") {
  torch::NoGradGuard no_grad;
  auto count = [](const std::string& name) {
    const auto& config = find_model_preset(name).config;
    const int64_t allocated = count_parameters(*build_model(config));
    CHECK(count_parameters(config) == allocated);  // the shapes-only count (vitlab models)
    return allocated;
  };
  CHECK(count("vit_b16") == 86567656);    // ViT-B/16, 1000 classes (timm vit_base_patch16_224)
  CHECK(count("vit_l16") == 304326632);   // ViT-L/16 (timm vit_large_patch16_224)
  CHECK(count("bit_r50x1") == 25549352);  // timm resnetv2_50x1_bit: 25.55M
  CHECK(count("vit_ti16") == 5717416);    // DeiT-Ti: 5.7M
  CHECK(count("vit_s16") == 22050664);    // DeiT-S: 22.1M
}

TEST_CASE("a shapes-only model allocates nothing and counts what a real one holds", "[models]") {
  for (const auto& preset : model_presets()) {
    INFO(preset.name);
    ModelConfig c = preset.config;
    c.image_size = small_image_size(c);
    {
      const ShapeOnlyScope shapes_only;
      const auto model = build_model(preset.config);  // full size: ViT-H, BiT-R152x2 included
      for (const auto& p : model->parameters()) CHECK(p.is_meta());
      CHECK(count_parameters(*model) == count_parameters(preset.config));
    }
    torch::manual_seed(0);
    const auto real = build_model(c);
    for (const auto& p : real->parameters()) CHECK_FALSE(p.is_meta());
    CHECK(count_parameters(*real) == count_parameters(c));
  }
}

TEST_CASE("learned_2d: a row half shared along rows, a column half shared along columns", "[models]") {
  torch::manual_seed(1);
  auto model = as_vit(build_model(tiny_vit("learned_2d")));
  auto table = model->pos->table().squeeze(0);  // (1 + 16, 32); row 0 is the class token
  const int64_t g = 4, half = 16;
  for (int64_t r = 0; r < g; ++r)
    for (int64_t c = 0; c < g; ++c) {
      auto patch = table[1 + r * g + c];
      CHECK(torch::equal(patch.narrow(0, 0, half), table[1 + r * g].narrow(0, 0, half)));
      CHECK(torch::equal(patch.narrow(0, half, half), table[1 + c].narrow(0, half, half)));
    }
  // Different rows differ in the row half; different columns in the column half.
  CHECK_FALSE(torch::equal(table[1].narrow(0, 0, half), table[1 + g].narrow(0, 0, half)));
  CHECK_FALSE(torch::equal(table[1].narrow(0, half, half), table[2].narrow(0, half, half)));
  // Two tables of width D/2: 2 * g * D/2 parameters plus the class token's own embedding.
  const auto params = model->named_parameters();
  CHECK(params["pos.row_embed"].sizes() == torch::IntArrayRef({4, 16}));
  CHECK(params["pos.col_embed"].sizes() == torch::IntArrayRef({4, 16}));
}

TEST_CASE("relative: pairs with equal offsets share the bias, per head", "[models]") {
  torch::manual_seed(2);
  auto model = as_vit(build_model(tiny_vit("relative")));
  auto& block = model->block_list[0];
  const auto relative = std::dynamic_pointer_cast<RelativePositionBiasImpl>(block->relative);
  REQUIRE(relative);
  auto bias = relative->forward().squeeze(0);  // (heads, T, T)
  const int64_t T = 17;
  REQUIRE(bias.sizes() == torch::IntArrayRef({4, T, T}));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      const int64_t i2 = (i + 3) % T, j2 = j + (i2 - i);
      if (j2 < 0 || j2 >= T) continue;
      CHECK(torch::equal(bias.select(1, i).select(1, j), bias.select(1, i2).select(1, j2)));
    }
  CHECK_FALSE(torch::equal(bias[0][0][1], bias[0][1][0]));  // +1 and -1 differ
  CHECK_FALSE(torch::equal(bias[0][0][1], bias[1][0][1]));  // heads differ
  // The bias reaches the logits: the explicit attention weights change when it changes.
  auto x = torch::randn({1, 1, 16, 16});
  std::vector<torch::Tensor> before, after;
  model->eval();
  model->forward_with_attention(x, before);
  {
    torch::NoGradGuard no_grad;
    relative->relative_bias.add_(1.0 * torch::arange(2 * T - 1).to(torch::kFloat));
  }
  model->forward_with_attention(x, after);
  CHECK_FALSE(torch::allclose(before[0], after[0]));
  // No absolute embedding when relative is chosen.
  CHECK_FALSE(model->pos->table().defined());
}

namespace {
// The relative bias's gradient for a fixed upstream gradient, on `device`: ViT-B/16's 12 heads
// and 197 tokens, so each table entry sums up to 197 terms.
std::pair<torch::Tensor, torch::Tensor> relative_bias_and_grad(const torch::Device& device) {
  torch::manual_seed(11);
  RelativePositionBiasImpl relative(12, 197);
  relative.to(device);
  auto upstream = torch::randn({1, 12, 197, 197}).to(device);
  auto bias = relative.forward();
  (bias * upstream).sum().backward();
  return {bias.detach().cpu(), relative.relative_bias.grad().cpu()};
}

// The reference: the offsets gathered by index, and the gradient that gather's backward adds up.
std::pair<torch::Tensor, torch::Tensor> relative_by_gather(const torch::Device& device) {
  torch::manual_seed(11);
  RelativePositionBiasImpl relative(12, 197);
  relative.to(device);
  auto upstream = torch::randn({1, 12, 197, 197}).to(device);
  auto bias = relative.relative_bias.index_select(1, relative.index.reshape({-1})).reshape({1, 12, 197, 197});
  (bias * upstream).sum().backward();
  return {bias.detach().cpu(), relative.relative_bias.grad().cpu()};
}
}  // namespace

TEST_CASE("relative: the bias is the table gathered at offset i - j, and so is its gradient", "[models]") {
  const torch::Device cpu(torch::kCPU);
  const auto [bias, grad] = relative_bias_and_grad(cpu);
  const auto [want_bias, want_grad] = relative_by_gather(cpu);
  CHECK(torch::equal(bias, want_bias));
  CHECK(torch::allclose(grad, want_grad, 1e-5, 1e-4));  // sums in another order
  // Offset 0 (the diagonal) sums 197 terms; offset +-196 only one.
  CHECK(grad[0][196].item<float>() != 0.0f);
}

TEST_CASE("relative: the bias's gradient is the same bit for bit on every GPU run", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA, 0);
  const auto [bias, grad] = relative_bias_and_grad(gpu);
  for (int run = 0; run < 3; ++run) {
    INFO("run " << run);
    CHECK(torch::equal(relative_bias_and_grad(gpu).second, grad));
  }
  const auto [want_bias, want_grad] = relative_by_gather(gpu);
  CHECK(torch::equal(bias, want_bias));
  CHECK(torch::allclose(grad, want_grad, 1e-5, 1e-4));
}

TEST_CASE("sincos_2d is fixed: a buffer without gradient, the same for every seed", "[models]") {
  torch::manual_seed(3);
  auto a = as_vit(build_model(tiny_vit("sincos_2d")));
  torch::manual_seed(4);
  auto b = as_vit(build_model(tiny_vit("sincos_2d")));
  CHECK(torch::equal(a->pos->table(), b->pos->table()));
  CHECK_FALSE(a->pos->table().requires_grad());
  for (const auto& p : a->named_parameters()) CHECK(p.key().find("pos") == std::string::npos);
  // Class token row is zero; patch (0, 0) has sin(0)=0 and cos(0)=1 halves.
  auto t = a->pos->table().squeeze(0);
  CHECK(t[0].abs().sum().item<float>() == 0.0f);
  CHECK(t[1].narrow(0, 0, 8).abs().sum().item<float>() == 0.0f);
  CHECK(t[1].narrow(0, 8, 8).sum().item<float>() == Approx(8.0));
}

TEST_CASE("cls pooling reads only the class token, gap only the patch tokens", "[models]") {
  torch::manual_seed(5);
  auto cls_model = as_vit(build_model(tiny_vit()));
  auto encoded = torch::randn({2, 17, 32});
  auto changed = encoded.clone();
  changed.narrow(1, 1, 16).add_(torch::randn({2, 16, 32}));
  const auto pool = [](const std::shared_ptr<ViTImpl>& m, const torch::Tensor& z) {
    return m->pool(Residual{z, {}});
  };
  CHECK(torch::allclose(pool(cls_model, encoded), pool(cls_model, changed)));
  changed = encoded.clone();
  changed.narrow(1, 0, 1).add_(torch::randn({2, 1, 32}));  // (a constant shift would vanish in LN)
  CHECK_FALSE(torch::allclose(pool(cls_model, encoded), pool(cls_model, changed)));
  // The stream may arrive as two summands: the same pooled vector.
  CHECK(torch::allclose(cls_model->pool(Residual{encoded - 1.0, torch::ones_like(encoded)}),
                        pool(cls_model, encoded), 1e-5, 1e-6));

  for (GapNorm order : {GapNorm::kAfterPool, GapNorm::kBeforePool}) {
    auto c = tiny_vit();
    c.pool = "gap";
    c.gap_norm = order;
    auto gap_model = as_vit(build_model(c));  // still has a class token: it must be ignored
    changed = encoded.clone();
    changed.narrow(1, 0, 1).add_(torch::randn({2, 1, 32}));
    CHECK(torch::allclose(pool(gap_model, encoded), pool(gap_model, changed)));
    // And it is the mean of the patches (normalised after or before averaging).
    auto patches = encoded.narrow(1, 1, 16);
    auto expected = order == GapNorm::kAfterPool ? gap_model->fc_norm->forward(patches.mean(1))
                                                 : gap_model->norm->forward(patches).mean(1);
    CHECK(torch::allclose(pool(gap_model, encoded), expected));
  }
  auto c = tiny_vit();
  c.pool = "gap";
  c.class_token = false;
  auto no_cls = as_vit(build_model(c));
  CHECK_FALSE(no_cls->cls_token.defined());
  CHECK(no_cls->pos->table().size(1) == 16);  // no row for a class token
}

TEST_CASE("a block computes both pre-LN residual branches of the paper's equations", "[models]") {
  torch::manual_seed(6);
  auto model = as_vit(build_model(tiny_vit()));
  model->eval();
  auto& block = model->block_list[0];
  auto x = torch::randn({2, 17, 32});
  ops::AttentionRecorder recorder;
  auto y = block->forward(Residual{x, {}}).sum();
  auto z1 = x + block->mixer->forward(block->norm1->forward(x));
  auto z2 = z1 + block->mlp->forward(block->norm2->forward(z1));
  CHECK(torch::allclose(y, z2, 1e-5, 1e-6));
  // The MLP branch matters: dropping it changes the output.
  CHECK_FALSE(torch::allclose(y, z1, 1e-3, 1e-3));
  // The attention weights are a softmax over keys.
  REQUIRE(recorder.weights().size() == 2);  // the block's attention, then the reference's
  CHECK(torch::allclose(recorder.weights()[0].sum(-1), torch::ones({2, 4, 17}), 1e-5, 1e-5));
}

TEST_CASE("fused and explicit attention paths agree", "[models]") {
  torch::manual_seed(7);
  auto model = as_vit(build_model(tiny_vit("relative")));
  model->eval();
  auto x = torch::randn({3, 1, 16, 16});
  std::vector<torch::Tensor> attention;
  auto explicit_logits = model->forward_with_attention(x, attention);
  auto fused_logits = model->forward(x);
  CHECK(attention.size() == 2);
  CHECK(torch::allclose(explicit_logits, fused_logits, 1e-4, 1e-5));
}

TEST_CASE("TF SAME padding and weight standardisation", "[models]") {
  CHECK(same_padding(224, 7, 2) == std::make_pair<int64_t, int64_t>(2, 3));
  CHECK(same_padding(112, 3, 2) == std::make_pair<int64_t, int64_t>(0, 1));
  CHECK(same_padding(56, 3, 1) == std::make_pair<int64_t, int64_t>(1, 1));
  torch::manual_seed(8);
  StdConv2d conv(3, 4, 3, 1, ConvPadding::kSymmetric, 1e-8);
  // Scaling and shifting a filter does not change a standardised convolution.
  auto x = torch::randn({1, 3, 8, 8});
  auto y = conv->forward(x);
  {
    torch::NoGradGuard no_grad;
    conv->weight.mul_(3.0).add_(0.5);
  }
  CHECK(torch::allclose(conv->forward(x), y, 1e-4, 1e-4));
}

TEST_CASE("hybrid: the stem's feature map becomes the token grid", "[models]") {
  auto c = find_model_preset("hybrid_tiny_28").config;
  auto model = as_vit(build_model(c));
  auto tokens = model->embed(torch::randn({2, 1, 28, 28}));
  CHECK(tokens.sizes() == torch::IntArrayRef({2, 49, 192}));  // 28 / stride 2 / patch 2 = 7
  REQUIRE(model->patch_embed->backbone);
  CHECK(model->patch_embed->backbone->out_channels() == 512);
}

TEST_CASE("build_model rejects an invalid config", "[models]") {
  auto c = tiny_vit();
  c.patch_size = 5;
  REQUIRE_THROWS_WITH_TYPE(build_model(c), ConfigError, "model.image_size: 16 is not divisible by patch_size 5");
}
