// Strict config reading: every error names the JSON path, the bad value and what is allowed.
#include "config/model_presets.h"
#include "config/run_config.h"
#include "test_helpers.h"

using namespace vitlab;
using vitlab::test::run_vitlab;
using vitlab::test::TempDir;

namespace {
Json base() {
  return Json{{"model", {{"name", "vit_tiny_p4_28"}}},
              {"data", {{"dataset", "synthetic"}}},
              {"train", {{"epochs", 1}}}};
}
RunConfig read_with(const std::vector<std::string>& sets) {
  return read_run_config(with_overrides(base(), sets), "x.json");
}
}  // namespace

TEST_CASE("a preset gives defaults and explicit fields win", "[config]") {
  auto c = read_with({"model.pos_embed=learned_2d", "model.depth=3"});
  CHECK(c.model.name == "vit_tiny_p4_28");
  CHECK(c.model.width == 192);  // from the preset
  CHECK(c.model.depth == 3);    // explicit
  CHECK(c.model.pos_embed == "learned_2d");
  CHECK(c.train.epochs == 1);
}

TEST_CASE("the resolved config reads back to the same struct", "[config]") {
  for (const auto& preset : model_presets()) {
    Json j = base();
    j["model"] = Json{{"name", preset.name}};
    if (preset.config.family != ModelFamily::kViT || preset.name != "vit_tiny_p4_28")
      j["data"] = Json{{"dataset", "fashion-mnist"}};
    const RunConfig first = read_run_config(j, "x.json");
    const Json resolved = first.to_json();
    const RunConfig second = read_run_config(resolved, "resolved.json");
    CHECK(second.to_json() == resolved);
  }
}

TEST_CASE("unknown keys are errors that list the known ones", "[config]") {
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.patch=4"}), ConfigError, "x.json: model.patch: unknown key");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.patch=4"}), ConfigError, "patch_size");
  REQUIRE_THROWS_WITH_TYPE(read_with({"train.epoch=4"}), ConfigError, "train.epoch: unknown key");
  REQUIRE_THROWS_WITH_TYPE(read_with({"data.augment.flop=true"}), ConfigError,
                           "data.augment.flop: unknown key");
  REQUIRE_THROWS_WITH_TYPE(read_with({"learning_rate=1"}), ConfigError, "learning_rate: unknown key");
}

TEST_CASE("wrong types, bad enums and out-of-range values name path, value and the allowed", "[config]") {
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.width=\"wide\""}), ConfigError,
                           "model.width: expected an integer in [1, 65536], got \"wide\"");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.patch_size=-4"}), ConfigError,
                           "model.patch_size: expected an integer in [1, 8192], got -4");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.patch_size=2.5"}), ConfigError, "got 2.5");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.pos_embed=learned_3d"}), ConfigError,
                           "model.pos_embed: unknown value \"learned_3d\"; allowed: none | "
                           "learned_1d | learned_2d | relative | sincos_2d");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.class_token=1"}), ConfigError,
                           "model.class_token: expected true or false, got 1");
  REQUIRE_THROWS_WITH_TYPE(read_with({"train.lr=-0.1"}), ConfigError, "train.lr: expected a number in [0, 100]");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.dropout=1.5"}), ConfigError, "model.dropout");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.resnet_layers=[3,-1]"}), ConfigError,
                           "model.resnet_layers[1]: expected an integer in [1, 256], got -1");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model=3"}), ConfigError, "model: expected an object, got 3");
  REQUIRE_THROWS_WITH_TYPE(read_with({"seed=-1"}), ConfigError, "seed: expected an integer >= 0");
  REQUIRE_THROWS_WITH_TYPE(read_with({"device=gpu"}), ConfigError, "device: \"gpu\" is not a device");
}

TEST_CASE("invalid combinations are rejected with the reason", "[config]") {
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.patch_size=5"}), ConfigError,
                           "model.image_size: 28 is not divisible by patch_size 5");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.heads=5"}), ConfigError,
                           "model.width: 192 is not divisible by heads 5");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.class_token=false"}), ConfigError,
                           "model.pool: \"cls\" needs a class token");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.width=190", "model.heads=2", "model.pos_embed=sincos_2d"}),
                           ConfigError, "sincos_2d needs width divisible by 4");
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.token_mixer=axial"}), ConfigError,
                           "model.class_token: token_mixer \"axial\" has no place for a class token");
  REQUIRE_THROWS_WITH_TYPE(
      read_with({"model.token_mixer=pooling", "model.class_token=false", "model.pool=gap",
                 "model.pos_embed=relative"}),
      ConfigError, "model.pos_embed: \"relative\" biases attention logits");
  REQUIRE_THROWS_WITH_TYPE(read_with({"data.train_size=100", "data.val_size=100"}), ConfigError,
                           "data.val_size: 100 leaves no training images");
  REQUIRE_THROWS_WITH_TYPE(read_with({"train.warmup_epochs=3"}), ConfigError,
                           "train.warmup_epochs: 3 is longer than the run (1 epochs)");
  REQUIRE_THROWS_WITH_TYPE(read_with({"data.synthetic_classes=7"}), ConfigError,
                           "model.num_classes: 10 does not match data.synthetic_classes 7");
}

TEST_CASE("a hybrid whose stem output does not divide is rejected", "[config]") {
  Json j = base();
  j["model"] = Json{{"name", "hybrid_tiny_28"}, {"image_size", 30}};
  j["data"]["synthetic_image_size"] = 30;
  REQUIRE_THROWS_WITH_TYPE(read_run_config(j, "h.json"), ConfigError,
                           "model.patch_size: the stem's 15x15 feature map (image_size 30 / stride 2) "
                           "is not divisible by patch_size 2");
  j["model"] = Json{{"name", "hybrid_r50_b16"}, {"image_size", 200}};
  REQUIRE_THROWS_WITH_TYPE(read_run_config(j, "h.json"), ConfigError,
                           "model.image_size: 200 is not divisible by the ResNet stem's stride 16");
}

TEST_CASE("an unknown model name lists the known ones", "[config]") {
  REQUIRE_THROWS_WITH_TYPE(read_with({"model.name=vit_xl"}), ConfigError,
                           "model.name: unknown model \"vit_xl\"; known models: vit_ti16, vit_s16");
  Json j = base();
  j["model"].erase("name");
  REQUIRE_THROWS_WITH_TYPE(read_run_config(j, "x.json"), ConfigError, "model.name: missing");
}

TEST_CASE("overrides parse JSON values and reject malformed assignments", "[config]") {
  Json j = base();
  apply_override(j, "model.resnet_layers=[1,2]");
  CHECK(j["model"]["resnet_layers"] == Json::array({1, 2}));
  apply_override(j, "train.lr=3e-4");
  CHECK(j["train"]["lr"].get<double>() == Approx(3e-4));
  apply_override(j, "model.pos_embed=none");
  CHECK(j["model"]["pos_embed"] == "none");
  REQUIRE_THROWS_WITH_TYPE(apply_override(j, "model.width"), ConfigError, "is not of the form key=value");
  REQUIRE_THROWS_WITH_TYPE(apply_override(j, "model..width=3"), ConfigError, "empty path component");
  REQUIRE_THROWS_WITH_TYPE(apply_override(j, "train.epochs.x=3"), ConfigError, "train.epochs: cannot set a key inside a non-object");
}

TEST_CASE("an override value that is not UTF-8 is a ConfigError naming the key (found by fuzzing)",
          "[config]") {
  // A JSON file cannot hold such a string (the parser refuses it), but a --set bare word could,
  // and the error message and the stored config then failed inside the JSON library.
  Json j = base();
  REQUIRE_THROWS_WITH_TYPE(apply_override(j, "train.lr=\xA0 0.01"), ConfigError,
                           "--set: train.lr: the value is not valid UTF-8 text");
  REQUIRE_THROWS_WITH_TYPE(apply_override(j, "description=caf\xE9"), ConfigError, "description");
  CHECK(json_brief(Json(std::string("\xA0"))) == "\"\xEF\xBF\xBD\"");  // U+FFFD, not a throw
}

TEST_CASE(
    "a number beyond double's range is a ConfigError, in a file or in --set (found by fuzzing)",
    "[config]") {
  TempDir dir;
  vitlab::test::write_text(dir.file("big.json"), "{\"train\": {\"lr\": 1e999}}");
  REQUIRE_THROWS_WITH_TYPE(read_json_file(dir.file("big.json")), ConfigError,
                           "big.json: not valid JSON: [json.exception.out_of_range.406]");
  // --set takes it as a bare word, which the strict reader then refuses as not a number.
  REQUIRE_THROWS_WITH_TYPE(read_with({"train.lr=1e999"}), ConfigError,
                           "train.lr: expected a number in [0, 100], got \"1e999\"");
}

TEST_CASE("config files: missing and malformed files name the file", "[config]") {
  TempDir dir;
  REQUIRE_THROWS_WITH_TYPE(read_json_file(dir.file("nope.json")), ConfigError, "nope.json: no such file");
  vitlab::test::write_text(dir.file("bad.json"), "{\"model\": {\"name\": }");
  REQUIRE_THROWS_WITH_TYPE(read_json_file(dir.file("bad.json")), ConfigError, "bad.json: not valid JSON at byte");
}

TEST_CASE("bookkeeping keys: device, log_every and checkpoint_every do not make another run", "[config]") {
  Json a = read_run_config(base()).to_json();
  Json b = a;
  b["device"] = "cuda:1";
  b["train"]["log_every"] = 10;
  b["train"]["checkpoint_every"] = 5;
  CHECK(a != b);
  CHECK(without_bookkeeping_keys(a) == without_bookkeeping_keys(b));
  b["train"]["lr"] = 0.5;
  CHECK(without_bookkeeping_keys(a) != without_bookkeeping_keys(b));
  CHECK(vitlab::is_bookkeeping_key("train.checkpoint_every"));
  CHECK_FALSE(vitlab::is_bookkeeping_key("train.epochs"));
  Json zero = base();
  zero["train"]["checkpoint_every"] = 0;
  REQUIRE_THROWS_WITH_TYPE(read_run_config(zero), ConfigError, "train.checkpoint_every");
}

TEST_CASE("vitlab config exits 2 with the message for a bad config", "[config][cli]") {
  TempDir dir;
  vitlab::test::write_text(dir.file("c.json"), base().dump());
  auto ok = run_vitlab("config " + dir.file("c.json") + " --set model.depth=2");
  CHECK(ok.exit_code == 0);
  CHECK(ok.output.find("\"depth\": 2") != std::string::npos);
  // A JSON list with commas is one override, not three (cxxopts would split it by default).
  auto list = run_vitlab("config " + dir.file("c.json") + " --set model.pos_embed=none --set 'model.resnet_layers=[1,1,1]'");
  CHECK(list.exit_code == 0);
  CHECK(list.output.find("\"pos_embed\": \"none\"") != std::string::npos);
  CHECK(list.output.find("\"resnet_layers\": [\n      1,\n      1,\n      1\n    ]") != std::string::npos);
  auto bad = run_vitlab("config " + dir.file("c.json") + " --set model.pos_embed=learned_3d");
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("model.pos_embed: unknown value \"learned_3d\"") != std::string::npos);
  auto missing = run_vitlab("config " + dir.file("absent.json"));
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("absent.json: no such file") != std::string::npos);
  auto unknown = run_vitlab("frobnicate");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("unknown command \"frobnicate\"") != std::string::npos);
}
