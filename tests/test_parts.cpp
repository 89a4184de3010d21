// The registered parts (models/parts.h): every combination of token mixer, position embedding,
// pooling head and class token that validates is built and checked on every path, so a part added
// to a table is tested here with no other edit.
#include "config/model_presets.h"
#include "models/factory.h"
#include "models/parts.h"
#include "models/vit.h"
#include "ops/fast_kernels.h"
#include "test_helpers.h"
#include "train/optimizer.h"
#include "train/train_step.h"

using namespace vitlab;

namespace {
struct Combination {
  ModelConfig config;
  std::string label;
};

// Every valid (mixer, position embedding, pooling, class token) on a tiny ViT: width 32, 4 heads,
// 2 blocks, a 4x4 grid of 4 px patches.
std::vector<Combination> all_combinations() {
  std::vector<Combination> out;
  for (const auto& mixer : token_mixer_parts())
    for (const auto& pos : position_embedding_parts())
      for (const auto& pooling : pooling_parts())
        for (bool class_token : {true, false}) {
          ModelConfig c = find_model_preset("vit_tiny_p4_28").config;
          c.width = 32;
          c.heads = 4;
          c.depth = 2;
          c.mlp_dim = 64;
          c.image_size = 16;
          c.token_mixer = mixer.name;
          c.pos_embed = pos.name;
          c.pool = pooling.name;
          c.class_token = class_token;
          try {
            c.validate();
          } catch (const ConfigError&) {
            continue;  // a combination the parts' rules exclude (checked below)
          }
          out.push_back({c, fmt::format("{} {} {} class_token={}", mixer.name, pos.name,
                                        pooling.name, class_token)});
        }
  return out;
}

// Logits and every parameter's gradient of the same model on the same images.
std::pair<torch::Tensor, std::vector<torch::Tensor>> forward_backward(ImageClassifier& model,
                                                                      const torch::Tensor& images) {
  model->zero_grad();
  auto logits = model->forward(images);
  logits.square().sum().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters())
    grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return {logits.detach(), grads};
}
}  // namespace

TEST_CASE("every mixer, position embedding and pooling head is registered and validated",
          "[models]") {
  const auto combos = all_combinations();
  // Each part appears in at least one valid combination.
  for (const auto& mixer : token_mixer_parts()) {
    INFO(mixer.name);
    CHECK(std::any_of(combos.begin(), combos.end(),
                      [&](const Combination& k) { return k.config.token_mixer == mixer.name; }));
  }
  for (const auto& pos : position_embedding_parts()) {
    INFO(pos.name);
    CHECK(std::any_of(combos.begin(), combos.end(),
                      [&](const Combination& k) { return k.config.pos_embed == pos.name; }));
  }
  // The rules each part states exclude exactly the combinations they describe.
  for (const auto& k : combos) {
    const auto& mixer = token_mixer_part(k.config.token_mixer);
    CHECK_FALSE((!mixer.mixes_class_token && k.config.class_token));
    CHECK_FALSE((position_embedding_part(k.config.pos_embed).block_bias &&
                 !mixer.takes_attention_bias));
    CHECK_FALSE((pooling_part(k.config.pool).needs_class_token && !k.config.class_token));
  }
  ModelConfig c = find_model_preset("vit_tiny_p4_28").config;
  c.token_mixer = "convolution";
  std::string choices;
  for (const auto& mixer : token_mixer_parts()) choices += (choices.empty() ? "" : " | ") + std::string(mixer.name);
  REQUIRE_THROWS_WITH_TYPE(c.validate("f.json"), ConfigError,
                           "f.json: model.token_mixer: unknown value \"convolution\"; allowed: " + choices);
}

TEST_CASE("every registered combination trains forward and backward with finite values, and the "
          "fast-kernels switch computes the same function on the CPU",
          "[models]") {
  for (const auto& k : all_combinations()) {
    DYNAMIC_SECTION(k.label) {
      torch::manual_seed(3);
      auto model = build_model(k.config);
      model->eval();  // no dropout: two passes must see the same function
      const auto images = torch::randn({2, 1, 16, 16});
      const auto plain = forward_backward(model, images);
      CHECK(plain.first.sizes() == torch::IntArrayRef({2, k.config.num_classes}));
      CHECK(torch::isfinite(plain.first).all().item<bool>());
      bool any_gradient = false;
      for (const auto& g : plain.second) {
        CHECK(torch::isfinite(g).all().item<bool>());
        any_gradient = any_gradient || g.abs().sum().item<double>() > 0;
      }
      CHECK(any_gradient);
      // On the CPU every op falls back to ATen under the switch: the very same numbers.
      const ops::FastKernels fast(true);
      const auto fused = forward_backward(model, images);
      CHECK(torch::equal(plain.first, fused.first));
      for (size_t i = 0; i < plain.second.size(); ++i) CHECK(torch::equal(plain.second[i], fused.second[i]));
    }
  }
}

TEST_CASE("every registered combination computes the plain GPU path's function on the fused, "
          "graph-captured train step, and repeats it bit for bit",
          "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  for (const auto& k : all_combinations()) {
    DYNAMIC_SECTION(k.label) {
      const auto train = [&](bool fast) {
        torch::manual_seed(5);
        auto model = build_model(k.config);
        model->to(device);
        TrainConfig t;
        t.precision = Precision::kBf16;
        t.lr = 1e-3;
        t.grad_clip = 1.0;
        Optimizer optimizer(parameter_groups(*model), t, fast);
        TrainStep step(model, optimizer, t, TrainObjective(t, {}, {}, device), device, fast, /*warmup_steps=*/2);
        std::vector<double> losses;
        torch::manual_seed(6);
        for (int i = 0; i < 5; ++i) {
          auto x = torch::randn({16, 1, 16, 16}).to(device);
          auto y = torch::one_hot(torch::randint(0, 10, {16}, torch::kLong), 10).to(torch::kFloat).to(device);
          losses.push_back(step.run(x, y, 1e-3).loss.item<double>());
        }
        CHECK(step.graphed() == fast);
        return losses;
      };
      const auto plain = train(false), fused = train(true);
      // A run repeats bit for bit: seeds are compared in the sweeps' summaries.
      CHECK(train(true) == fused);
      for (size_t i = 0; i < plain.size(); ++i) {
        INFO("step " << i);
        CHECK(std::isfinite(fused[i]));
        CHECK(fused[i] == Approx(plain[i]).epsilon(2e-2));  // bf16 rounding in another order
      }
    }
  }
}

TEST_CASE("weight decay: every position embedding, class token and relative bias is skipped, "
          "every matrix of the linear layers and convolutions is decayed",
          "[models]") {
  std::vector<ModelConfig> configs;
  for (const auto& k : all_combinations()) configs.push_back(k.config);
  for (const auto& preset : {"bit_r26_28", "hybrid_tiny_28"}) {
    ModelConfig c = find_model_preset(preset).config;
    c.resnet_layers = {1, 1};
    configs.push_back(c);
  }
  for (const auto& c : configs) {
    auto model = build_model(c);
    const WeightDecayRule decay(*model);
    std::set<const void*> matrices;  // the weights of every linear layer and convolution
    for (const auto& m : model->modules()) {
      if (auto l = std::dynamic_pointer_cast<LinearImpl>(m)) matrices.insert(l->weight.unsafeGetTensorImpl());
      if (auto v = std::dynamic_pointer_cast<PatchProjectionImpl>(m)) matrices.insert(v->weight.unsafeGetTensorImpl());
      if (auto s = std::dynamic_pointer_cast<StdConv2dImpl>(m)) matrices.insert(s->weight.unsafeGetTensorImpl());
    }
    for (const auto& p : model->named_parameters()) {
      const std::string& name = p.key();
      INFO(c.name << " " << c.token_mixer << " " << c.pos_embed << ": " << name);
      const bool position = name.rfind("pos.", 0) == 0 || name.find(".relative.") != std::string::npos;
      if (position || name == "cls_token" || p.value().dim() < 2)
        CHECK_FALSE(decay.applies(p.value()));
      else
        CHECK(decay.applies(p.value()));
      if (matrices.count(p.value().unsafeGetTensorImpl())) CHECK(decay.applies(p.value()));
    }
  }
}
