// Sweep files: schema errors, grid expansion (count, values, Cartesian order), run ids (stable,
// readable, sanitized), stage references, config validation before anything runs, recipes
// ("extends") and the claim/command/expected fields.
#include <filesystem>
#include <functional>

#include "config/run_config.h"
#include "experiment/manifest.h"
#include "experiment/plan.h"
#include "experiment/run_folder.h"
#include "experiment/run_ids.h"
#include "test_helpers.h"

using namespace vitlab;
namespace fs = std::filesystem;

namespace {
Json tiny_base() {
  return Json{{"device", "cpu"},
              {"model", {{"name", "vit_tiny_p4_28"}, {"width", 16}, {"heads", 2}, {"depth", 1},
                         {"mlp_dim", 32}, {"patch_size", 7}}},
              {"data", {{"dataset", "synthetic"}, {"synthetic_train", 256}, {"synthetic_test", 64}}},
              {"train", {{"epochs", 1}, {"batch_size", 32}}}};
}

Json not_yet_measured() {
  return Json{{"metric", "test_accuracy_pct"}, {"values", Json::object()}, {"tolerance", 1.0},
              {"measured_on", "not yet measured"}};
}

Json tiny_sweep() {
  return Json{{"description", "test sweep"},
              {"claim", "a test claim (Table 0)"},
              {"command", "vitlab sweep s.json"},
              {"expected", not_yet_measured()},
              {"base", tiny_base()},
              {"grid", {{"model.pos_embed", {"none", "learned_1d", "learned_2d"}},
                        {"model.pool", {"cls", "gap"}}}},
              {"seeds", {0, 1}},
              {"baselines", {{"bit", {{"model.name", "bit_r26_28"}, {"model.resnet_layers", {1, 1, 1, 1}}}}}}};
}

SweepSpec spec_of(const Json& j) { return read_sweep_spec(j, "s.json", "s"); }

std::string spec_error(const Json& j) {
  try {
    spec_of(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string plan_error(const Json& j) {
  try {
    plan_sweep(spec_of(j), "/tmp/vitlab-never-written");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("grid expansion: Cartesian product in sorted path order, last path fastest", "[sweep]") {
  const auto variants = expand_variants(spec_of(tiny_sweep()));
  REQUIRE(variants.size() == 1 + 2 * 3);
  CHECK(variants[0].key == "baseline=bit");
  CHECK(variants[0].kind == "baseline");
  CHECK(variants[0].compare_to.empty());
  // "model.pool" < "model.pos_embed": pool is the outer loop.
  const std::vector<std::string> expected = {
      "pool=cls__pos_embed=none", "pool=cls__pos_embed=learned_1d", "pool=cls__pos_embed=learned_2d",
      "pool=gap__pos_embed=none", "pool=gap__pos_embed=learned_1d", "pool=gap__pos_embed=learned_2d"};
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(variants[i + 1].key == expected[i]);
    CHECK(variants[i + 1].kind == "grid");
    CHECK(variants[i + 1].compare_to == "baseline=bit");
  }
  const auto& v = variants[5];  // pool=gap, pos_embed=learned_1d
  REQUIRE(v.overrides.size() == 2);
  CHECK(v.overrides[0].path == "model.pool");
  CHECK(v.overrides[0].value == "gap");
  CHECK(v.overrides[0].origin == "grid[\"model.pool\"][1]");
  CHECK(v.overrides[1].value == "learned_1d");

  const SweepPlan plan = plan_sweep(spec_of(tiny_sweep()), "/tmp/x/../sweep-out");
  REQUIRE(plan.runs.size() == 14);
  CHECK(plan.out_dir == "/tmp/sweep-out");
  // Seed-major: every variant of seed 0 first.
  CHECK(plan.runs[0].id == "baseline=bit__seed=0");
  CHECK(plan.runs[6].id == "pool=gap__pos_embed=learned_2d__seed=0");
  CHECK(plan.runs[7].id == "baseline=bit__seed=1");
  CHECK(plan.runs[13].id == "pool=gap__pos_embed=learned_2d__seed=1");
  CHECK(plan.runs[13].dir == "/tmp/sweep-out/runs/pool=gap__pos_embed=learned_2d__seed=1");
  // Resolved configs: overrides applied, defaults filled, seed set.
  const Json& c = plan.runs[13].stages.at(0).config;
  CHECK(c["seed"] == 1);
  CHECK(c["model"]["pool"] == "gap");
  CHECK(c["model"]["pos_embed"] == "learned_2d");
  CHECK(c["model"]["width"] == 16);
  CHECK(c["train"]["lr"] == 0.001);  // the default, filled in
  const Json& b = plan.runs[0].stages.at(0).config;
  CHECK(b["model"]["family"] == "resnet");
  CHECK(b["model"]["resnet_layers"] == Json({1, 1, 1, 1}));
}

TEST_CASE("run ids are stable, readable and sanitized", "[sweep]") {
  const auto a = plan_sweep(spec_of(tiny_sweep()), "/tmp/o"), b = plan_sweep(spec_of(tiny_sweep()), "/tmp/o");
  REQUIRE(a.runs.size() == b.runs.size());
  for (size_t i = 0; i < a.runs.size(); ++i) CHECK(a.runs[i].id == b.runs[i].id);
  CHECK(run_id("pool=gap__pos_embed=learned_2d", 1) == "pool=gap__pos_embed=learned_2d__seed=1");

  CHECK(sanitize_id_part("a/b c") == "a_b_c");
  CHECK(sanitize_id_part("__x__y__") == "x_y");
  CHECK(id_value_text(Json({1, 1, 1, 1})) == "1_1_1_1");
  CHECK(id_value_text(Json(0.0003)) == "0.0003");
  CHECK(id_value_text(Json(1e-5)) == "1e-05");
  CHECK(id_value_text(Json(true)) == "true");
  CHECK(id_value_text(Json("vit_tiny_p4_28")) == "vit_tiny_p4_28");

  // Shared last components keep the whole path; stage prefixes stay readable.
  const auto keys = short_keys({"data.image_size", "model.image_size", "train.lr", "finetune:train.epochs"});
  CHECK(keys.at("data.image_size") == "data.image_size");
  CHECK(keys.at("model.image_size") == "model.image_size");
  CHECK(keys.at("train.lr") == "lr");
  CHECK(keys.at("finetune:train.epochs") == "finetune.epochs");

  // Overlong ids are cut with a hash: still unique, still the same every time.
  std::vector<std::string> parts(20, "some_long_key=some_long_value");
  const std::string id = join_id_parts(parts);
  CHECK(id.size() <= 160);
  CHECK(id == join_id_parts(parts));
  parts.back() = "some_long_key=other";
  CHECK(id != join_id_parts(parts));

  // Named variants and shared axes.
  Json j = tiny_sweep();
  j["grid"] = {{"data.synthetic_train", {256, 512}}, {"model.pos_embed", {"none", "learned_1d"}}};
  j["shared_axes"] = {"data.synthetic_train"};
  j["variants"] = {{"gap", {{"model.pool", "gap"}, {"model.class_token", false}}}};
  const auto variants = expand_variants(spec_of(j));
  std::vector<std::string> keys_seen;
  for (const auto& v : variants) keys_seen.push_back(v.key + " vs " + v.compare_to);
  CHECK(keys_seen == std::vector<std::string>{
                         "baseline=bit__synthetic_train=256 vs ",
                         "baseline=bit__synthetic_train=512 vs ",
                         "synthetic_train=256__pos_embed=none vs baseline=bit__synthetic_train=256",
                         "synthetic_train=256__pos_embed=learned_1d vs baseline=bit__synthetic_train=256",
                         "synthetic_train=512__pos_embed=none vs baseline=bit__synthetic_train=512",
                         "synthetic_train=512__pos_embed=learned_1d vs baseline=bit__synthetic_train=512",
                         "variant=gap__synthetic_train=256 vs baseline=bit__synthetic_train=256",
                         "variant=gap__synthetic_train=512 vs baseline=bit__synthetic_train=512"});
}

TEST_CASE("sweep file schema errors name the file and the JSON path", "[sweep]") {
  Json j = tiny_sweep();
  j["grdi"] = Json::object();
  CHECK(contains(spec_error(j), "s.json: grdi: unknown key; known keys here: base, baselines"));
  j = tiny_sweep();
  j.erase("description");
  CHECK(contains(spec_error(j), "s.json: description: missing or empty"));
  j = tiny_sweep();
  j["description"] = "  ";
  CHECK(contains(spec_error(j), "s.json: description: missing or empty"));
  j = tiny_sweep();
  j["grid"]["train.lr"] = Json::array();
  CHECK(contains(spec_error(j), "s.json: grid[\"train.lr\"]: empty list; give at least one value"));
  j = tiny_sweep();
  j["grid"]["train.lr"] = 0.1;
  CHECK(contains(spec_error(j), "grid[\"train.lr\"]: expected a list of values to try (or an object of named alternatives), got 0.1"));
  j = tiny_sweep();
  j["grid"]["model..width"] = {1};
  CHECK(contains(spec_error(j), "is not a dotted config path"));
  j = tiny_sweep();
  j["grid"]["seed"] = {1, 2};
  CHECK(contains(spec_error(j), "grid[\"seed\"]: a run's seed comes from the sweep's \"seeds\" list"));
  j = tiny_sweep();
  j["seeds"] = Json::array();
  CHECK(contains(spec_error(j), "s.json: seeds: empty list"));
  j["seeds"] = {0, 1, 0};
  CHECK(contains(spec_error(j), "s.json: seeds[2]: seed 0 is listed twice"));
  j["seeds"] = {0, "one"};
  CHECK(contains(spec_error(j), "seeds[1]: expected an integer >= 0, got \"one\""));
  j = tiny_sweep();
  j["base"]["seed"] = 3;
  CHECK(contains(spec_error(j), "s.json: base.seed:"));
  j = tiny_sweep();
  j.erase("baselines");
  CHECK(contains(spec_error(j), "s.json: baselines: missing or empty"));
  j = tiny_sweep();
  j["baselines"]["resnet"] = Json::object();
  CHECK(contains(spec_error(j), "s.json: compare_to: missing; there are 2 baselines"));
  j["compare_to"] = "nope";
  CHECK(contains(spec_error(j), "compare_to: \"nope\" is not one of the baselines"));
  j = tiny_sweep();
  j["baselines"]["bit/x"] = Json::object();
  CHECK(contains(spec_error(j), "baselines.bit/x: names may use only"));
  j = tiny_sweep();
  j["baselines"]["bit"] = {1, 2};
  CHECK(contains(spec_error(j), "baselines.bit: expected an object"));
  j = tiny_sweep();
  j["shared_axes"] = {"train.lr"};
  CHECK(contains(spec_error(j), "shared_axes: \"train.lr\" is not a grid axis"));
  j = tiny_sweep();
  j["grid"]["finetune:train.lr"] = {0.1};
  CHECK(contains(spec_error(j), "names stage \"finetune\" but the sweep has no stages"));
  j["stages"] = {{{"name", "pretrain"}}, {{"name", "pretrain"}}};
  CHECK(contains(spec_error(j), "stages[1].name: \"pretrain\" is used by two stages"));
  j["stages"] = {{{"name", "pretrain"}, {"sets", Json::object()}}};
  CHECK(contains(spec_error(j), "stages[0].sets: unknown key"));
}

TEST_CASE("every run's config is checked before anything runs, all problems are listed", "[sweep]") {
  Json j = tiny_sweep();
  j["grid"]["model.widht"] = {32};
  const std::string e = plan_error(j);
  CHECK(contains(e, "s.json: 1 problem in the sweep's runs (nothing was run):"));
  CHECK(contains(e, "run pool=cls__pos_embed=none__widht=32__seed=0 (and 11 more): model.widht: unknown key"));
  CHECK(contains(e, "(set by grid[\"model.widht\"][0])"));

  j = tiny_sweep();
  j["grid"]["model.pos_embed"] = {"none", "bogus"};
  j["grid"]["train.lr"] = {0.001, -1};
  const std::string two = plan_error(j);
  CHECK(contains(two, "problems in the sweep's runs"));
  CHECK(contains(two, "model.pos_embed: unknown value \"bogus\""));
  CHECK(contains(two, "(set by grid[\"model.pos_embed\"][1])"));
  CHECK(contains(two, "train.lr:"));
  CHECK(contains(two, "(set by grid[\"train.lr\"][1])"));

  j = tiny_sweep();
  j["grid"]["train.lr"] = {0.001, 1e-3};
  const std::string dup = plan_error(j);
  CHECK(contains(dup, "duplicate run id baseline=bit__seed=0") == false);
  CHECK(contains(dup, "duplicate run id pool=cls__pos_embed=none__lr=0.001__seed=0"));

  j = tiny_sweep();
  j["baselines"]["bit"]["model.resnet_layers"] = "many";
  CHECK(contains(plan_error(j), "run baseline=bit__seed=0 (and 1 more): model.resnet_layers:"));
  CHECK(contains(plan_error(j), "(set by baselines.bit[\"model.resnet_layers\"])"));

  j = tiny_sweep();
  j["base"]["model"]["width"] = 15;  // not divisible by 2 heads
  CHECK(contains(plan_error(j), "s.json: base: model."));
}

TEST_CASE("stages: @name in init_from is the earlier stage's checkpoint of the same run", "[sweep]") {
  Json j = tiny_sweep();
  j["grid"] = {{"finetune:train.lr", {0.001, 0.002}}};
  j["stages"] = {{{"name", "pretrain"}, {"set", {{"train.epochs", 2}}}},
                 {{"name", "finetune"}, {"set", {{"init_from", "@pretrain"}, {"train.lr", 0.0005}}}}};
  const SweepPlan plan = plan_sweep(spec_of(j), "/tmp/st");
  const PlannedRun& run = plan.runs.at(2);  // seed 0, finetune lr 0.002
  CHECK(run.id == "finetune.lr=0.002__seed=0");
  REQUIRE(run.stages.size() == 2);
  CHECK(run.stages[0].dir == "/tmp/st/runs/finetune.lr=0.002__seed=0/pretrain");
  CHECK(run.stages[0].config["train"]["epochs"] == 2);
  CHECK(run.stages[0].config["train"]["lr"] == 0.001);  // the grid's finetune: value is not here
  CHECK(run.stages[1].config["train"]["lr"] == 0.002);  // the grid wins over the stage's own set
  CHECK(run.stages[1].config["init_from"] == "/tmp/st/runs/finetune.lr=0.002__seed=0/pretrain/checkpoints/last.pt");

  // A path for every stage and the same path for one stage: the stage's own wins there.
  Json both = j;
  both["grid"] = {{"finetune:train.lr", {0.002}}, {"train.lr", {0.0007}}};
  const SweepPlan p2 = plan_sweep(spec_of(both), "/tmp/st");
  CHECK(p2.runs.at(1).id == "finetune.lr=0.002__lr=0.0007__seed=0");
  CHECK(p2.runs.at(1).stages[0].config["train"]["lr"] == 0.0007);
  CHECK(p2.runs.at(1).stages[1].config["train"]["lr"] == 0.002);

  j["stages"][0]["set"]["init_from"] = "@finetune";
  CHECK(contains(plan_error(j), "stage pretrain: init_from: \"@finetune\" names no earlier stage of this run (earlier: none)"));
  j = tiny_sweep();
  j["baselines"]["bit"]["init_from"] = "@pretrain";
  CHECK(contains(plan_error(j), "an @name refers to an earlier stage of the same run, and this sweep has no stages"));
}

TEST_CASE("stored and planned configs: the first difference is named, device is ignored", "[sweep]") {
  Json a = {{"device", "cpu"}, {"train", {{"lr", 0.001}, {"epochs", 2}}}, {"seed", 0}};
  Json b = a;
  b["device"] = "cuda";
  CHECK(first_config_difference(a, b).empty());
  b["train"]["lr"] = 0.002;
  b["train"]["epochs"] = 3;
  CHECK(first_config_difference(a, b) == "train.epochs (2 there, 3 in the sweep)");
  b = a;
  b["init_from"] = "x";
  CHECK(first_config_difference(a, b) == "init_from (absent there, \"x\" in the sweep)");
  CHECK(config_differences(a, b) == std::vector<std::string>{"init_from=\"x\""});
}

TEST_CASE("stored configs from before a key existed match when the sweep keeps its default", "[sweep]") {
  // A finished run's config.json lacks the keys added after it ran; those runs behaved as the
  // defaults say, so a sweep that keeps them finds the results its own, and one that sets them
  // otherwise is told which key differs.
  const Json planned = read_run_config(tiny_base()).to_json();
  Json stored = planned;
  stored["data"]["augment"].erase("rand_augment");
  stored["data"].erase("streaming");
  CHECK(first_config_difference(stored, planned).empty());
  Json changed = planned;
  changed["data"]["augment"]["rand_augment"] = "rand-m9-mstd0.5";
  CHECK(first_config_difference(stored, changed) ==
        "data.augment.rand_augment (\"\" there, \"rand-m9-mstd0.5\" in the sweep)");
  // A key the toolkit no longer knows is compared as it stands, and named.
  Json retired = planned;
  retired["data"]["retired_key"] = 1;
  CHECK(first_config_difference(retired, planned) == "data.retired_key (1 there, absent in the sweep)");
}

TEST_CASE("named axes: alternatives that set several paths together", "[sweep]") {
  Json j = tiny_sweep();
  j["grid"] = {{"pooling", {{"cls", Json::object()}, {"gap", {{"model.pool", "gap"}, {"model.class_token", false}}}}},
               {"train.lr", {0.001, 0.003}}};
  const auto variants = expand_variants(spec_of(j));
  REQUIRE(variants.size() == 5);
  CHECK(variants[1].key == "pooling=cls__lr=0.001");
  CHECK(variants[2].key == "pooling=cls__lr=0.003");
  CHECK(variants[3].key == "pooling=gap__lr=0.001");
  REQUIRE(variants[3].overrides.size() == 3);
  CHECK(variants[3].overrides[0].path == "model.class_token");
  CHECK(variants[3].overrides[0].origin == "grid[\"pooling\"][\"gap\"][\"model.class_token\"]");
  CHECK(variants[3].overrides[2].path == "train.lr");
  const SweepPlan plan = plan_sweep(spec_of(j), "/tmp/n");
  CHECK(plan.runs[3].stages[0].config["model"]["class_token"] == false);

  // A named axis can be shared with the baselines.
  j["shared_axes"] = {"pooling"};
  const auto shared = expand_variants(spec_of(j));
  CHECK(shared[0].key == "baseline=bit__pooling=cls");
  CHECK(shared[1].key == "baseline=bit__pooling=gap");
  CHECK(shared[4].compare_to == "baseline=bit__pooling=gap");

  // Two parts of the file setting one path for the same variant is an error, not a silent pick.
  j.erase("shared_axes");
  j["grid"]["pooling"]["gap"]["train.lr"] = 0.1;
  CHECK(contains(plan_error(j), "s.json: grid[\"train.lr\"][0]: sets \"train.lr\", which grid[\"pooling\"][\"gap\"][\"train.lr\"] also sets"));
  j = tiny_sweep();
  j["grid"]["model.pool"] = {{"gap", Json::object()}};
  CHECK(contains(spec_error(j), "grid[\"model.pool\"]: a named axis (an object of alternatives) takes a plain name"));
  j["grid"].erase("model.pool");
  j["grid"]["pooling"] = Json::object();
  CHECK(contains(spec_error(j), "grid[\"pooling\"]: empty"));
}

namespace {
// A recipe file in `dir`/recipes/NAME holding `config`.
std::string write_recipe(const test::TempDir& dir, const Json& config, const std::string& name = "r.json") {
  fs::create_directories(dir.path() / "recipes");
  const std::string file = (dir.path() / "recipes" / name).string();
  test::write_text(file, Json{{"description", "test recipe"}, {"config", config}}.dump(2));
  return file;
}

Json recipe_config() {
  Json c = tiny_base();
  c["train"]["lr"] = 0.003;
  c["data"]["augment"] = {{"flip", true}, {"crop_padding", 2}};
  return c;
}

Json extending_sweep(const Json& base) {
  Json j = tiny_sweep();
  j["extends"] = "recipes/r.json";
  j["base"] = base;
  return j;
}
}  // namespace

TEST_CASE("extends: the sweep's base is merged over the recipe's config (RFC 7396)", "[sweep][recipe]") {
  test::TempDir dir;
  const std::string recipe = write_recipe(dir, recipe_config());
  const std::string source = dir.file("s.json");
  // Objects merge key by key and the sweep wins; null removes the recipe's key (the default applies).
  const Json base = {{"model", {{"width", 32}}}, {"data", {{"augment", {{"flip", false}}}}},
                     {"train", {{"lr", nullptr}}}};
  const SweepSpec spec = read_sweep_spec(extending_sweep(base), source, "s");
  CHECK(spec.extends);
  CHECK(spec.recipe.file == recipe);
  CHECK(spec.own_base == base);
  CHECK(spec.base["model"]["name"] == "vit_tiny_p4_28");  // the recipe's
  CHECK(spec.base["model"]["width"] == 32);              // the sweep's
  CHECK(spec.base["model"]["heads"] == 2);
  CHECK(spec.base["data"]["augment"] == Json({{"flip", false}, {"crop_padding", 2}}));
  CHECK_FALSE(spec.base["train"].contains("lr"));
  CHECK(spec.base["train"]["epochs"] == 1);

  const SweepPlan plan = plan_sweep(spec, dir.file("out"));
  const Json& c = plan.runs.at(1).stages.at(0).config;
  CHECK(c["model"]["width"] == 32);
  CHECK(c["data"]["augment"]["crop_padding"] == 2);
  CHECK(c["data"]["augment"]["flip"] == false);
  CHECK(c["train"]["lr"] == 0.001);  // the default, not the recipe's 0.003

  // The manifest stores the recipe and the merged base, so results say what they ran.
  const Json m = make_manifest(spec, plan);
  CHECK(m["base"] == spec.base);
  CHECK(m["recipe"]["file"] == recipe);
  CHECK(m["recipe"]["config"] == recipe_config());
  CHECK(m["claim"] == "a test claim (Table 0)");
  CHECK(m["expected"]["measured_on"] == "not yet measured");

  // A changed recipe changes every planned config (what the changed-config check compares).
  Json changed = recipe_config();
  changed["train"]["epochs"] = 2;
  write_recipe(dir, changed);
  const SweepPlan again = plan_sweep(read_sweep_spec(extending_sweep(base), source, "s"), dir.file("out"));
  for (const auto& run : again.runs) CHECK(run.stages.at(0).config["train"]["epochs"] == 2);
  CHECK(first_config_difference(c, again.runs.at(1).stages.at(0).config) ==
        "train.epochs (1 there, 2 in the sweep)");

  // Lists replace the recipe's list; they are not merged element by element.
  Recipe r;
  r.config = {{"model", {{"resnet_layers", {1, 1, 1, 1}}, {"name", "bit_r26_28"}}}};
  CHECK(merge_over_recipe(r, {{"model", {{"resnet_layers", {2}}}}})["model"] ==
        Json({{"resnet_layers", {2}}, {"name", "bit_r26_28"}}));
  // Without a base the recipe is the base.
  Json no_base = extending_sweep(Json::object());
  no_base.erase("base");
  CHECK(read_sweep_spec(no_base, source, "s").base == changed);
}

TEST_CASE("recipe errors name the sweep file, the recipe file and the key", "[sweep][recipe]") {
  test::TempDir dir;
  const std::string source = dir.file("s.json");
  auto error = [&](const Json& j) {
    try {
      plan_sweep(read_sweep_spec(j, source, "s"), dir.file("out"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string recipe = write_recipe(dir, recipe_config());
  Json j = extending_sweep(Json::object());
  j["extends"] = "recipes/missing.json";
  CHECK(contains(error(j), source + ": extends: recipe file " + dir.file("recipes/missing.json") +
                               " not found (the path is relative to the folder of " + source + ")"));
  j["extends"] = 3;
  CHECK(contains(error(j), source + ": extends: expected the path of a recipe file"));
  j["extends"] = "";
  CHECK(contains(error(j), source + ": extends: expected the path of a recipe file"));

  test::write_text(dir.file("recipes/bad.json"), "{\"description\": ");
  j["extends"] = "recipes/bad.json";
  CHECK(contains(error(j), source + ": extends: " + dir.file("recipes/bad.json") + ": not valid JSON at byte"));

  auto recipe_error = [&](const Json& content) {
    test::write_text(dir.file("recipes/x.json"), content.dump());
    Json s = extending_sweep(Json::object());
    s["extends"] = "recipes/x.json";
    return error(s);
  };
  const std::string x = dir.file("recipes/x.json");
  CHECK(contains(recipe_error({{"description", "d"}, {"config", Json::object()}, {"extends", "r.json"}}),
                 x + ": extends: a recipe cannot extend another recipe"));
  CHECK(contains(recipe_error({{"description", "d"}, {"config", {{"extends", "r.json"}}}}),
                 x + ": config.extends: a recipe cannot extend another recipe"));
  CHECK(contains(recipe_error({{"description", "d"}, {"configs", Json::object()}}),
                 x + ": config: missing"));
  CHECK(contains(recipe_error({{"description", "d"}, {"config", Json::object()}, {"note", 1}}),
                 x + ": note: unknown key; known keys here: config, description"));
  CHECK(contains(recipe_error({{"config", Json::object()}}), x + ": description: missing or empty"));
  CHECK(contains(recipe_error({{"description", "d"}, {"config", {1, 2}}}), x + ": config: expected an object"));
  CHECK(contains(recipe_error({{"description", "d"}, {"config", {{"seed", 1}}}}),
                 x + ": config.seed: a recipe is shared by runs that differ by seed"));
  CHECK(contains(recipe_error(Json::array()), x + ": expected a recipe object"));

  // A bad value the recipe sets is reported as the recipe's; one the sweep sets, as the sweep's.
  Json bad = recipe_config();
  bad["model"]["pos_embed"] = "sideways";
  write_recipe(dir, bad);
  const std::string e = error(extending_sweep(Json::object()));
  CHECK(contains(e, source + ": base: model.pos_embed: unknown value \"sideways\""));
  CHECK(contains(e, "(set by the recipe " + recipe + ")"));
  const std::string own = error(extending_sweep({{"model", {{"pos_embed", "upside"}}}}));
  CHECK(contains(own, "base: model.pos_embed: unknown value \"upside\""));
  CHECK_FALSE(contains(own, "set by the recipe"));

  j = tiny_sweep();
  j.erase("base");
  CHECK(contains(error(j), source + ": base: missing; give a full run config"));
  j = extending_sweep(Json::object());
  j["base"] = nullptr;
  CHECK(contains(error(j), source + ": base: expected an object"));
}

TEST_CASE("claim, command and expected are required and strictly checked", "[sweep]") {
  Json j = tiny_sweep();
  j.erase("claim");
  CHECK(contains(spec_error(j), "s.json: claim: missing or empty; state the paper's finding"));
  j = tiny_sweep();
  j["command"] = " ";
  CHECK(contains(spec_error(j), "s.json: command: missing or empty"));
  j["command"] = 7;
  CHECK(contains(spec_error(j), "s.json: command: expected a string, got 7"));
  j = tiny_sweep();
  j.erase("expected");
  CHECK(contains(spec_error(j), "s.json: expected: missing; give {\"metric\", \"values\", \"tolerance\", \"measured_on\"}"));
  j["expected"] = 3;
  CHECK(contains(spec_error(j), "s.json: expected: expected an object"));

  auto expected_error = [&](const std::function<void(Json&)>& edit) {
    Json s = tiny_sweep();
    edit(s["expected"]);
    return spec_error(s);
  };
  CHECK(contains(expected_error([](Json& e) { e.erase("metric"); }), "s.json: expected.metric: missing; one of test_accuracy_pct"));
  CHECK(contains(expected_error([](Json& e) { e["metric"] = "accuracy"; }),
                 "s.json: expected.metric: unknown metric \"accuracy\"; one of test_accuracy_pct"));
  CHECK(contains(expected_error([](Json& e) { e["tolerance"] = "1"; }),
                 "s.json: expected.tolerance: expected a number in [0, 100], got \"1\""));
  CHECK(contains(expected_error([](Json& e) { e["tolerance"] = -0.5; }), "s.json: expected.tolerance: expected a number in [0, 100]"));
  CHECK(contains(expected_error([](Json& e) { e.erase("tolerance"); }), "s.json: expected.tolerance: missing"));
  CHECK(contains(expected_error([](Json& e) { e.erase("measured_on"); }), "s.json: expected.measured_on: missing"));
  CHECK(contains(expected_error([](Json& e) { e["measured_on"] = ""; }), "s.json: expected.measured_on: empty"));
  CHECK(contains(expected_error([](Json& e) { e.erase("values"); }), "s.json: expected.values: missing"));
  CHECK(contains(expected_error([](Json& e) { e["values"] = {1}; }), "s.json: expected.values: expected an object"));
  CHECK(contains(expected_error([](Json& e) { e["unit"] = "%"; }), "s.json: expected.unit: unknown key; known keys here: measured_on, metric, tolerance, values"));
  CHECK(contains(expected_error([](Json& e) { e["values"] = {{"baseline=bit", "85"}}; }),
                 "s.json: expected.values[\"baseline=bit\"]: expected a number from 0 to 100 (percent), got \"85\""));
  CHECK(contains(expected_error([](Json& e) { e["values"] = {{"baseline=bit", 150}}; }),
                 "expected.values[\"baseline=bit\"]: expected a number from 0 to 100"));
  CHECK(contains(expected_error([](Json& e) { e["values"] = {{"baseline=bit", 85.0}}; }),
                 "s.json: expected.measured_on: \"not yet measured\", but values lists 1 row(s)"));
  CHECK(contains(expected_error([](Json& e) { e["measured_on"] = "one H200, 2026-11-28"; }),
                 "s.json: expected.values: empty, but measured_on says \"one H200, 2026-11-28\""));

  // Rows must exist (checked when planned); diff_pts needs a row compared with a baseline.
  j = tiny_sweep();
  j["expected"] = {{"metric", "test_accuracy_pct"}, {"values", {{"baseline=bit", 85.5}, {"pos_embed=sideways", 80}}},
                   {"tolerance", 1.0}, {"measured_on", "here, today"}};
  const SweepSpec spec = spec_of(j);
  REQUIRE(spec.expected.values.size() == 2);
  CHECK(spec.expected.values[0] == std::pair<std::string, double>{"baseline=bit", 85.5});
  CHECK(spec.expected.to_json()["values"]["pos_embed=sideways"] == 80);
  CHECK(contains(plan_error(j), "s.json: expected.values[\"pos_embed=sideways\"]: no such row; the sweep's "
                                "rows are: baseline=bit, pool=cls__pos_embed=none,"));
  j["expected"]["values"] = {{"baseline=bit", -1.0}};
  j["expected"]["metric"] = "diff_pts";
  CHECK(contains(plan_error(j), "s.json: expected.values[\"baseline=bit\"]: the reference baseline has no difference from itself"));
  j["expected"]["values"] = {{"pool=gap__pos_embed=none", -1.5}};
  CHECK(plan_error(j) == "(no error)");
}
