// JAX .npz import: .npz files written here in vit_jax / big_vision naming (the conversion below is
// written from the JAX model definitions, independently of lib/weights/weights_jax.cpp) must give the
// same model as the same weights through the timm path.
#include <filesystem>

#include "formats/npz.h"
#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/weights_init.h"
#include "weights/weights_export.h"
#include "weights/weights_import.h"

using namespace vitlab;
using vitlab::test::TempDir;

namespace {

ModelConfig config(Json j) {
  Json base = {{"name", "vit_tiny_p4_28"}, {"image_size", 16}, {"in_channels", 3}, {"num_classes", 10},
               {"patch_size", 4}, {"width", 32}, {"depth", 2}, {"heads", 4}, {"mlp_dim", 64}};
  base.update(j);
  return read_model_config(base);
}

using test::random_model;

torch::Tensor logits(const ImageClassifier& m) {
  const auto& c = m->config();
  torch::manual_seed(11);
  auto x = torch::randn({2, c.in_channels, c.image_size, c.image_size});
  torch::NoGradGuard no_grad;
  m->eval();
  return m->forward(x);
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / b.norm().item<double>();
}

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// vitlab tensors -> JAX checkpoint entries, from models_vit.py / models_resnet.py.
NamedTensors to_jax(const ModelConfig& c, const NamedTensors& state, bool big_vision) {
  const int64_t D = c.width, H = c.heads, d = c.width / c.heads;
  const std::string mha = big_vision ? "MultiHeadDotProductAttention_0/" : "MultiHeadDotProductAttention_1/";
  const std::string mlp = big_vision ? "MlpBlock_0/" : "MlpBlock_3/";
  const std::string ln2 = big_vision ? "LayerNorm_1/" : "LayerNorm_2/";
  auto hwio = [](const torch::Tensor& w) { return w.permute({2, 3, 1, 0}).contiguous(); };
  auto param = [](const std::string& n) { return ends_with(n, "weight") ? std::string("scale") : std::string("bias"); };
  NamedTensors out;
  for (const auto& [name, t] : state) {
    if (name == "patch_embed.proj.weight") out.emplace_back("embedding/kernel", hwio(t));
    else if (name == "patch_embed.proj.bias") out.emplace_back("embedding/bias", t);
    else if (name == "cls_token") out.emplace_back("cls", t);
    else if (name == "pos.pos_embed")
      out.emplace_back(big_vision ? "pos_embedding" : "Transformer/posembed_input/pos_embedding", t);
    else if (name == "norm.weight") out.emplace_back("Transformer/encoder_norm/scale", t);
    else if (name == "norm.bias") out.emplace_back("Transformer/encoder_norm/bias", t);
    else if (name == "head.weight") out.emplace_back("head/kernel", t.t().contiguous());
    else if (name == "head.bias") out.emplace_back("head/bias", t);
    else if (name == "pre_logits.weight") out.emplace_back("pre_logits/kernel", t.t().contiguous());
    else if (name == "pre_logits.bias") out.emplace_back("pre_logits/bias", t);
    else if (name == "patch_embed.backbone.stem.conv.weight") out.emplace_back("conv_root/kernel", hwio(t));
    else if (name.rfind("patch_embed.backbone.stem.norm.", 0) == 0)
      out.emplace_back("gn_root/" + param(name), t.reshape({1, 1, 1, -1}));  // old flax GN shape
    else if (name.rfind("patch_embed.backbone.stages.", 0) == 0) {
      int s, u;
      char rest[64];
      REQUIRE(std::sscanf(name.c_str(), "patch_embed.backbone.stages.%d.blocks.%d.%63s", &s, &u, rest) == 3);
      std::string r = rest, to = fmt::format("block{}/unit{}/", s + 1, u + 1);
      if (r == "downsample.conv.weight") out.emplace_back(to + "conv_proj/kernel", hwio(t));
      else if (r.rfind("downsample.norm.", 0) == 0) out.emplace_back(to + "gn_proj/" + param(r), t);
      else if (r.rfind("conv", 0) == 0) out.emplace_back(to + r.substr(0, 5) + "/kernel", hwio(t));
      else out.emplace_back(to + "gn" + r.substr(4, 1) + "/" + param(r), t);
    } else if (name.rfind("blocks.", 0) == 0) {
      int i;
      char rest[64];
      REQUIRE(std::sscanf(name.c_str(), "blocks.%d.%63s", &i, rest) == 2);
      const std::string r = rest, to = fmt::format("Transformer/encoderblock_{}/", i);
      if (r.rfind("norm1.", 0) == 0) out.emplace_back(to + "LayerNorm_0/" + param(r), t);
      else if (r.rfind("norm2.", 0) == 0) out.emplace_back(to + ln2 + param(r), t);
      else if (r == "mlp.fc1.weight") out.emplace_back(to + mlp + "Dense_0/kernel", t.t().contiguous());
      else if (r == "mlp.fc1.bias") out.emplace_back(to + mlp + "Dense_0/bias", t);
      else if (r == "mlp.fc2.weight") out.emplace_back(to + mlp + "Dense_1/kernel", t.t().contiguous());
      else if (r == "mlp.fc2.bias") out.emplace_back(to + mlp + "Dense_1/bias", t);
      else if (r == "attn.proj.weight") out.emplace_back(to + mha + "out/kernel", t.t().reshape({H, d, D}).contiguous());
      else if (r == "attn.proj.bias") out.emplace_back(to + mha + "out/bias", t);
      else if (r == "attn.qkv.weight") {
        auto parts = t.chunk(3, 0);  // rows: query, key, value; each (D_out, D_in)
        const char* names[] = {"query", "key", "value"};
        for (int k = 0; k < 3; ++k)
          out.emplace_back(to + mha + names[k] + "/kernel", parts[k].t().reshape({D, H, d}).contiguous());
      } else if (r == "attn.qkv.bias") {
        auto parts = t.chunk(3, 0);
        const char* names[] = {"query", "key", "value"};
        for (int k = 0; k < 3; ++k) out.emplace_back(to + mha + names[k] + "/bias", parts[k].reshape({H, d}).contiguous());
      } else FAIL("unmapped " << name);
    } else if (name != "pos.fixed") {
      FAIL("unmapped " << name);
    }
  }
  if (!big_vision) return out;
  // big_vision: "params/" prefix; scanned layers stack each block parameter on a leading axis.
  NamedTensors scanned;
  std::map<std::string, std::vector<torch::Tensor>> stacks;
  for (auto& [n, t] : out) {
    int i;
    char rest[128];
    if (std::sscanf(n.c_str(), "Transformer/encoderblock_%d/%127s", &i, rest) == 2)
      stacks[std::string("params/Transformer/encoderblock/") + rest].push_back(t);
    else
      scanned.emplace_back("params/" + n, t);
  }
  for (auto& [n, list] : stacks) scanned.emplace_back(n, torch::stack(list));
  return scanned;
}

std::map<std::string, torch::Tensor> state_map(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : module_state(m)) out[k] = v;
  return out;
}

}  // namespace

TEST_CASE("vit_jax .npz import equals the same weights through the timm path", "[weights]") {
  if (!npz_available()) {
    WARN("built without libzip: .npz import not tested");
    return;
  }
  TempDir dir;
  const std::vector<Json> cases = {
      Json::object(),                                                            // cls + learned_1d
      {{"representation_size", 24}},                                            // tanh pre-logits
      {{"name", "hybrid_r50_b16"}, {"image_size", 32}, {"patch_size", 1}, {"resnet_layers", {1, 1}}},
  };
  for (const auto& overrides : cases) {
    DYNAMIC_SECTION(overrides.dump()) {
      const ModelConfig c = config(overrides);
      auto source = random_model(c, 1);
      const std::string npz = dir.file("vit.npz");
      write_npz(npz, to_jax(c, module_state(*source), /*big_vision=*/false));
      auto from_npz = random_model(c, 2);
      const auto report = load_weights(*from_npz, npz);
      CHECK(report.names == "vit_jax");
      CHECK(report.pos_interp == PosInterp::kBilinear);  // vit_jax's own resize
      auto a = state_map(*source), b = state_map(*from_npz);
      for (auto& [name, t] : a) {
        INFO(name);
        CHECK(torch::allclose(t, b.at(name), 0, 0));
      }
      CHECK(rel_error(logits(from_npz), logits(source)) < 1e-6);
      if (c.representation_size == 0) {  // timm names exist: both paths agree
        export_weights(*source, dir.file("w.safetensors"), ExportFormat::kSafetensors, ExportNames::kTimm, "");
        auto from_timm = random_model(c, 3);
        load_weights(*from_timm, dir.file("w.safetensors"));
        CHECK(rel_error(logits(from_npz), logits(from_timm)) < 1e-6);
      }
    }
  }
}

TEST_CASE("big_vision .npz: params/ prefix, scanned layers, posemb without class row", "[weights]") {
  if (!npz_available()) {
    WARN("built without libzip: .npz import not tested");
    return;
  }
  TempDir dir;
  // big_vision's GAP: LayerNorm before pooling (gap_norm before_pool), no class token.
  const ModelConfig c = config({{"class_token", false}, {"pool", "gap"}, {"gap_norm", "before_pool"}});
  auto source = random_model(c, 1);
  NamedTensors entries = to_jax(c, module_state(*source), /*big_vision=*/true);
  entries.emplace_back("opt/state/step", torch::zeros({1}));  // skipped: outside params/
  write_npz(dir.file("bv.npz"), entries);
  auto target = random_model(c, 2);
  const auto report = load_weights(*target, dir.file("bv.npz"));
  CHECK(report.names == "big_vision");
  CHECK(report.notes.size() == 1);
  CHECK(rel_error(logits(target), logits(source)) < 1e-6);
  // The same file into a model with a class token gets a zero class row (pos added before cls).
  const ModelConfig with_cls = config({{"class_token", true}, {"pool", "gap"}, {"gap_norm", "before_pool"}});
  auto cls_model = random_model(with_cls, 2);
  NamedTensors with_token = entries;
  with_token.emplace_back("params/cls", torch::randn({1, 1, 32}));
  write_npz(dir.file("bv_cls.npz"), with_token);
  CHECK(load_weights(*cls_model, dir.file("bv_cls.npz")).pos_embed.class_row_added);
  // vit_jax normalises before pooling; a timm-style fc_norm model cannot take its encoder_norm.
  auto fc_norm = random_model(config({{"class_token", false}, {"pool", "gap"}}), 2);
  REQUIRE_THROWS_WITH_TYPE(load_weights(*fc_norm, dir.file("bv.npz")), IoError,
                           "unexpected tensor(s): \"params/Transformer/encoder_norm/bias\"");
}

TEST_CASE("JAX .npz errors name the file and the entry", "[weights]") {
  if (!npz_available()) {
    WARN("built without libzip: .npz import not tested");
    return;
  }
  TempDir dir;
  const ModelConfig c = config(Json::object());
  auto source = random_model(c, 1);
  const NamedTensors good = to_jax(c, module_state(*source), false);
  auto target = random_model(c, 2);
  auto write = [&](const std::string& file, const std::function<void(NamedTensors&)>& edit) {
    NamedTensors e = good;
    edit(e);
    write_npz(dir.file(file), e);
    return dir.file(file);
  };
  SECTION("unknown entry") {
    auto p = write("a.npz", [](NamedTensors& e) { e.emplace_back("Transformer/encoderblock_0/Adapter/kernel", torch::zeros({2})); });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, p), IoError, "a.npz: entry \"Transformer/encoderblock_0/Adapter/kernel\"");
  }
  SECTION("attention kernel of the wrong rank") {
    auto p = write("b.npz", [](NamedTensors& e) {
      for (auto& [n, t] : e)
        if (n == "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/key/kernel") t = torch::zeros({32, 32});
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, p), IoError, "has shape [32, 32]; expected (D, heads, head_dim)");
  }
  SECTION("value kernel missing") {
    auto p = write("c.npz", [](NamedTensors& e) {
      e.erase(std::remove_if(e.begin(), e.end(), [](auto& x) {
                return x.first == "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/value/kernel";
              }),
              e.end());
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, p), IoError, "lacks value/kernel");
  }
  SECTION("a block the model does not have") {
    auto p = write("d.npz", [](NamedTensors& e) {
      e.emplace_back("Transformer/encoderblock_2/LayerNorm_0/scale", torch::ones({32}));
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, p), IoError,
                             "unexpected tensor(s): \"Transformer/encoderblock_2/LayerNorm_0/scale\"");
  }
  SECTION("a missing head names the JAX-side timm name") {
    auto p = write("e.npz", [](NamedTensors& e) {
      e.erase(std::remove_if(e.begin(), e.end(), [](auto& x) { return x.first == "head/bias"; }), e.end());
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, p), IoError, "missing tensor(s): \"head.bias\"");
  }
}

TEST_CASE("vit_jax .npz of the timm fixtures gives timm's logits", "[weights][parity]") {
  if (!npz_available()) {
    WARN("built without libzip: .npz import not tested");
    return;
  }
  TempDir dir;
  const std::string fixtures = std::string(VITLAB_SOURCE_DIR) + "/tests/fixtures/parity/";
  const Json manifest = read_json_file(fixtures + "manifest.json");
  for (const auto& f : manifest["fixtures"]) {
    const std::string name = f["name"];
    if (name != "vit_cls_learned1d" && name != "hybrid_r1x1_same") continue;  // vit_jax layouts
    DYNAMIC_SECTION(name) {
      const ModelConfig c = read_model_config(f["vitlab_model"]);
      torch::manual_seed(0);
      auto via_timm = build_model(c);
      load_weights(*via_timm, fixtures + f["weights"].get<std::string>());
      write_npz(dir.file("f.npz"), to_jax(c, module_state(*via_timm), false));
      torch::manual_seed(1);
      auto via_npz = build_model(c);
      load_weights(*via_npz, dir.file("f.npz"));
      const auto io = read_safetensors(fixtures + f["io"].get<std::string>());
      via_timm->eval();
      via_npz->eval();
      torch::NoGradGuard no_grad;
      const auto a = via_npz->forward(*io.find("input")), b = via_timm->forward(*io.find("input"));
      CHECK(rel_error(a, b) < 1e-6);
      CHECK(rel_error(a, *io.find("logits")) <= 1e-5);
    }
  }
}
