// Weights in and out: export -> import round trips for every family (timm names where timm has
// the variant, vitlab names otherwise), the libtorch archive, head re-initialisation and the
// errors for weights that do not fit.
#include "config/model_presets.h"
#include "config/run_config.h"
#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/weights_init.h"
#include "weights/timm_names.h"
#include "weights/weights_export.h"
#include "weights/weights_import.h"

using namespace vitlab;
using vitlab::test::TempDir;

namespace {

// A small model of `preset` with the JSON overrides (ViTs: D=32, 2 blocks, 16 px, patch 4).
ModelConfig small(const std::string& preset, Json overrides = Json::object()) {
  Json j = {{"name", preset}, {"num_classes", 10}, {"in_channels", 3}};
  if (preset.rfind("vit", 0) == 0 || preset.rfind("axial", 0) == 0 || preset.rfind("pool", 0) == 0)
    j.update({{"image_size", 16}, {"patch_size", 4}, {"width", 32}, {"depth", 2}, {"heads", 4}, {"mlp_dim", 64}});
  if (preset == "hybrid_r50_b16")
    j.update({{"image_size", 32}, {"patch_size", 1}, {"width", 32}, {"depth", 1}, {"heads", 4},
              {"mlp_dim", 64}, {"resnet_layers", {1, 1}}});
  if (preset.rfind("bit", 0) == 0) j.update({{"image_size", 32}, {"resnet_layers", {1}}});
  j.update(overrides);
  return read_model_config(j);
}

using test::random_model;

torch::Tensor logits(const ImageClassifier& m, uint64_t seed = 7) {
  const auto& c = m->config();
  torch::manual_seed(seed);
  auto x = torch::randn({2, c.in_channels, c.image_size, c.image_size});
  torch::NoGradGuard no_grad;
  m->eval();
  return m->forward(x);
}

std::map<std::string, torch::Tensor> state_map(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : module_state(m)) out[k] = v;
  return out;
}

// Exports `c` (random weights), imports into a fresh model, checks tensors and logits.
std::string round_trip(const ModelConfig& c, const TempDir& dir) {
  auto source = random_model(c, 1);
  const std::string file = dir.file(c.name + ".safetensors");
  const ExportResult r =
      export_weights(*source, file, ExportFormat::kSafetensors, ExportNames::kAuto, file + ".json");
  auto target = random_model(c, 2);
  load_weights(*target, file);
  auto a = state_map(*source), b = state_map(*target);
  REQUIRE(a.size() == b.size());
  for (auto& [name, t] : a) {
    INFO(name);
    CHECK(torch::equal(t, b.at(name)));
  }
  CHECK(torch::equal(logits(source), logits(target)));
  return r.names;
}

std::set<std::string> file_names(const std::string& path) {
  std::set<std::string> names;
  for (auto& [k, v] : read_safetensors(path).tensors) names.insert(k);
  return names;
}

}  // namespace

TEST_CASE("timm-compatible families round-trip through timm names", "[weights]") {
  TempDir dir;
  const std::vector<std::pair<std::string, Json>> cases = {
      {"vit_tiny_p4_28", Json::object()},                                           // cls + learned_1d
      {"vit_tiny_p4_28", {{"class_token", false}, {"pool", "gap"}}},                 // GAP + fc_norm
      {"vit_tiny_p4_28", {{"pos_embed", "none"}, {"qkv_bias", false}}},             // no position embedding
      {"vit_tiny_p4_28", {{"pos_embed", "sincos_2d"}, {"pool", "gap"}, {"gap_norm", "before_pool"}}},
      {"hybrid_r50_b16", Json::object()},
      {"bit_r26x1", Json::object()},
      {"bit_r26x1", {{"resnet_preact", false}, {"resnet_padding", "same"}}},
  };
  for (const auto& [preset, overrides] : cases) {
    DYNAMIC_SECTION(preset << " " << overrides.dump()) {
      const ModelConfig c = small(preset, overrides);
      REQUIRE(timm_support(c).ok);
      CHECK(round_trip(c, dir) == "timm");
      const auto names = file_names(dir.file(c.name + ".safetensors"));
      if (c.family == ModelFamily::kResNet) {
        CHECK(names.count("stem.conv.weight"));
        CHECK(names.count("head.fc.weight"));
        CHECK(read_safetensors(dir.file(c.name + ".safetensors")).find("head.fc.weight")->dim() == 4);
      } else {
        CHECK(names.count("patch_embed.proj.weight"));
        CHECK(names.count("pos_embed") == (c.pos_embed != "none" ? 1u : 0u));
        CHECK(names.count("fc_norm.weight") == (c.pool == "gap" && c.gap_norm == GapNorm::kAfterPool ? 1u : 0u));
      }
      for (const auto& n : names) CHECK(n.find("backbone.") != 0);  // BiT: timm has no prefix
      const Json sidecar = read_json_file(dir.file(c.name + ".safetensors.json"));
      CHECK(sidecar["names"] == "timm");
      CHECK(sidecar["vitlab_model"] == c.to_json());
      CHECK(!sidecar["timm"].is_null());
    }
  }
}

TEST_CASE("variants timm lacks keep vitlab names and round-trip", "[weights]") {
  TempDir dir;
  const std::vector<std::pair<std::string, Json>> cases = {
      {"vit_tiny_p4_28", {{"pos_embed", "learned_2d"}}},
      {"vit_tiny_p4_28", {{"pos_embed", "relative"}}},
      {"vit_tiny_p4_28", {{"representation_size", 24}}},
      {"axial_s16", Json::object()},
      {"poolformer_s16", Json::object()},
      {"bit_r26_28", {{"image_size", 28}, {"in_channels", 1}}},
  };
  for (const auto& [preset, overrides] : cases) {
    DYNAMIC_SECTION(preset << " " << overrides.dump()) {
      const ModelConfig c = small(preset, overrides);
      REQUIRE_FALSE(timm_support(c).ok);
      CHECK(round_trip(c, dir) == "vitlab");
      const Json sidecar = read_json_file(dir.file(c.name + ".safetensors.json"));
      CHECK(sidecar["names"] == "vitlab");
      CHECK(sidecar["timm"].is_null());
      CHECK(!sidecar["not_timm_reason"].get<std::string>().empty());
      // Asking for timm names is an error that says why.
      auto m = random_model(c, 1);
      REQUIRE_THROWS_WITH_TYPE(export_weights(*m, dir.file("x.safetensors"), ExportFormat::kSafetensors,
                                              ExportNames::kTimm, ""),
                               UserError, "timm has no equivalent");
    }
  }
}

TEST_CASE("the timm mapping renames exactly the documented tensors", "[weights]") {
  const ModelConfig vit = small("vit_tiny_p4_28");
  auto m = random_model(vit, 1);
  auto timm = vitlab_to_timm(vit, module_state(*m));
  std::set<std::string> names;
  for (auto& [k, v] : timm) names.insert(k);
  auto own = state_map(*m);
  for (auto& [k, v] : own) {
    if (k == "pos.pos_embed") CHECK(names.count("pos_embed"));
    else CHECK(names.count(k));  // everything else keeps its name
  }
  const ModelConfig bit = small("bit_r26x1");
  auto r = random_model(bit, 1);
  for (auto& [k, v] : vitlab_to_timm(bit, module_state(*r))) {
    INFO(k);
    CHECK((k.rfind("stem.", 0) == 0 || k.rfind("stages.", 0) == 0 || k.rfind("norm.", 0) == 0 ||
           k.rfind("head.fc.", 0) == 0));
  }
  // The sidecar's timm arguments for the paper's B/16 name timm's registered model.
  const Json args = timm_model_args(find_model_preset("vit_b16").config);
  CHECK(args["model"] == "vit_base_patch16_224");
  CHECK(args["kwargs"]["global_pool"] == "token");
  CHECK(args["kwargs"]["mlp_ratio"] == 4.0);
  CHECK(timm_model_args(find_model_preset("bit_r50x1").config)["model"] == "resnetv2_50x1_bit");
  CHECK(timm_model_args(find_model_preset("hybrid_r50_b16").config)["model"] == "vit_base_r50_s16_224");
  const Json gap = timm_model_args(small("vit_tiny_p4_28", {{"class_token", false}, {"pool", "gap"}}));
  CHECK(gap["kwargs"]["global_pool"] == "avg");
  CHECK(gap["kwargs"]["fc_norm"] == true);
  CHECK(gap["kwargs"]["class_token"] == false);
}

TEST_CASE("libtorch export is torch::save's module archive", "[weights]") {
  TempDir dir;
  for (const auto& preset : {"vit_tiny_p4_28", "bit_r26x1"}) {
    DYNAMIC_SECTION(preset) {
      const ModelConfig c = small(preset);
      auto source = random_model(c, 1);
      const std::string file = dir.file("model.pt");
      export_weights(*source, file, ExportFormat::kLibtorch, ExportNames::kAuto, file + ".json");
      auto target = random_model(c, 2);
      std::shared_ptr<torch::nn::Module> as_module = target;
      torch::load(as_module, file);
      CHECK(torch::equal(logits(source), logits(target)));
      CHECK(read_json_file(file + ".json")["names"] == "vitlab");
      REQUIRE_THROWS_WITH_TYPE(export_weights(*source, file, ExportFormat::kLibtorch, ExportNames::kTimm, ""),
                               UserError, "libtorch");
    }
  }
}

TEST_CASE("head re-initialised when only the class count differs", "[weights]") {
  TempDir dir;
  for (const auto& preset : {"vit_tiny_p4_28", "bit_r26x1"}) {
    DYNAMIC_SECTION(preset) {
      const ModelConfig c10 = small(preset);
      auto source = random_model(c10, 1);
      const std::string file = dir.file("w.safetensors");
      export_weights(*source, file, ExportFormat::kSafetensors, ExportNames::kAuto, "");
      const ModelConfig c7 = small(preset, {{"num_classes", 7}});
      torch::manual_seed(3);
      auto fresh = build_model(c7);
      torch::manual_seed(3);
      auto target = build_model(c7);
      const auto report = load_weights(*target, file);
      CHECK(report.head_reinitialized);
      CHECK(report.classes_in_file == 10);
      CHECK(report.classes_in_model == 7);
      auto a = state_map(*source), b = state_map(*target), f = state_map(*fresh);
      for (auto& [name, t] : b) {
        INFO(name);
        if (name.rfind("head.", 0) == 0) CHECK(torch::equal(t, f.at(name)));  // the model's own init
        else CHECK(torch::equal(t, a.at(name)));
      }
      CHECK(report.summary().find("head re-initialised (10 -> 7 classes)") != std::string::npos);
    }
  }
}

TEST_CASE("weights that do not fit are IoErrors naming the file and the tensor", "[weights]") {
  TempDir dir;
  const ModelConfig c = small("vit_tiny_p4_28");
  auto m = random_model(c, 1);
  const std::string good = dir.file("good.safetensors");
  export_weights(*m, good, ExportFormat::kSafetensors, ExportNames::kTimm, "");
  NamedTensors timm = read_safetensors(good).tensors;
  auto write_variant = [&](const std::string& name, const std::function<void(NamedTensors&)>& edit) {
    NamedTensors t = timm;
    edit(t);
    const std::string path = dir.file(name);
    write_safetensors(path, t);
    return path;
  };
  auto target = random_model(c, 2);
  const auto before = logits(target);

  SECTION("missing tensor") {
    auto path = write_variant("missing.safetensors", [](NamedTensors& t) {
      t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "blocks.0.mlp.fc1.bias"; }),
              t.end());
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "missing tensor(s): \"blocks.0.mlp.fc1.bias\"");
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "missing.safetensors");
  }
  SECTION("unexpected tensor") {
    auto path = write_variant("extra.safetensors", [](NamedTensors& t) { t.emplace_back("reg_token", torch::zeros({1, 4, 32})); });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "unexpected tensor(s): \"reg_token\"");
  }
  SECTION("wrong shape") {
    auto path = write_variant("shape.safetensors", [](NamedTensors& t) {
      for (auto& [k, v] : t)
        if (k == "blocks.1.attn.qkv.weight") v = torch::zeros({96, 16});
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "\"blocks.1.attn.qkv.weight\" is [96, 16]");
  }
  SECTION("integer tensor for a float parameter") {
    auto path = write_variant("dtype.safetensors", [](NamedTensors& t) {
      for (auto& [k, v] : t)
        if (k == "norm.bias") v = torch::zeros({32}, torch::kLong);
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "\"norm.bias\" has dtype Long");
  }
  SECTION("unknown naming (another library's names)") {
    auto path = write_variant("hf.safetensors", [](NamedTensors& t) {
      for (auto& [k, v] : t) k = "vit.encoder." + k;
    });
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "unexpected tensor(s): \"vit.encoder.blocks.0.");
  }
  SECTION("timm weights into a variant timm lacks") {
    torch::manual_seed(0);
    auto learned2d = build_model(small("vit_tiny_p4_28", {{"pos_embed", "learned_2d"}}));
    REQUIRE_THROWS_WITH_TYPE(load_weights(*learned2d, good), IoError, "no timm/JAX equivalent");
    REQUIRE_THROWS_WITH_TYPE(load_weights(*learned2d, good), IoError, "unexpected tensor(s): \"pos_embed\"");
  }
  SECTION("a learned embedding into a sincos_2d model") {
    torch::manual_seed(0);
    auto sincos = build_model(small("vit_tiny_p4_28", {{"pos_embed", "sincos_2d"}}));
    REQUIRE_THROWS_WITH_TYPE(load_weights(*sincos, good), IoError, "is not the fixed 2-D sin-cos table");
  }
  SECTION("vitlab names of a variant timm lacks into another variant") {
    auto l2d = random_model(small("vit_tiny_p4_28", {{"pos_embed", "learned_2d"}}), 1);
    const std::string path = dir.file("l2d.safetensors");
    export_weights(*l2d, path, ExportFormat::kSafetensors, ExportNames::kAuto, "");
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, path), IoError, "\"pos.row_embed\"");
  }
  SECTION("missing file and a file that is not weights") {
    REQUIRE_THROWS_WITH_TYPE(load_weights(*target, dir.file("none.safetensors")), IoError, "no such weights file");
    vitlab::test::write_text(dir.file("junk.pt"), "not a checkpoint");
    REQUIRE_THROWS_AS(load_weights(*target, dir.file("junk.pt")), IoError);
  }
  CHECK(torch::equal(logits(target), before));  // a failed load changes nothing
}

TEST_CASE("init_from reads checkpoints, safetensors and keeps the old head rule", "[weights]") {
  TempDir dir;
  const ModelConfig c = small("vit_tiny_p4_28");
  auto source = random_model(c, 1);
  Checkpoint checkpoint;
  RunConfig run;
  run.model = c;
  checkpoint.config = run.to_json();
  checkpoint.model = module_state(*source);
  save_checkpoint(dir.file("ck.pt"), checkpoint);
  export_weights(*source, dir.file("w.safetensors"), ExportFormat::kSafetensors, ExportNames::kAuto, "");
  for (const auto& file : {"ck.pt", "w.safetensors"}) {
    DYNAMIC_SECTION(file) {
      auto target = random_model(small("vit_tiny_p4_28", {{"num_classes", 3}}), 2);
      const auto report = init_weights_from(*target, dir.file(file), WeightsImportOptions{});
      CHECK(report.head_reinitialized);
      CHECK(report.names == (std::string(file) == "ck.pt" ? "vitlab" : "timm"));
      CHECK(torch::equal(state_map(*target).at("blocks.1.mlp.fc2.weight"),
                         state_map(*source).at("blocks.1.mlp.fc2.weight")));
    }
  }
}
