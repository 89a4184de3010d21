// `vitlab sweep` / `vitlab summarize` as a user runs them: dry runs, input errors (exit 2, nothing
// written), a full tiny sweep with its summary files, skipping finished runs, refusing changed
// configs, --force, failure isolation, resuming a killed sweep, --jobs and staged runs; recipes
// ("extends") for sweeps and run configs, expected values in the summary, publishing results.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "config/json_reader.h"
#include "experiment/executor.h"
#include "test_helpers.h"

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;
namespace fs = std::filesystem;

namespace {
using test::tiny_base;
using test::tiny_sweep;

std::string write_sweep(const TempDir& dir, const Json& sweep, const std::string& name = "s.json") {
  test::write_text(dir.file(name), sweep.dump(2));
  return dir.file(name);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Json read_json(const std::string& path) { return Json::parse(test::read_text(path)); }

// Every run's test accuracy by id: what must not change when a sweep is interrupted.
std::map<std::string, double> accuracies(const Json& summary) {
  std::map<std::string, double> out;
  for (const auto& row : summary["rows"])
    for (const auto& r : row["results"]) out[r["id"].get<std::string>()] = r["test_accuracy"].get<double>();
  return out;
}
}  // namespace

TEST_CASE("sweep --dry-run lists ids and configs and writes nothing", "[sweep][cli]") {
  TempDir dir;
  const std::string file = write_sweep(dir, tiny_sweep());
  auto r = run_vitlab("sweep " + file + " --dry-run --out " + dir.file("out"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "sweep s (" + file + "): 6 runs = 3 variants x 2 seeds"));
  CHECK(contains(r.output, "dry run: nothing is written."));
  CHECK(contains(r.output, "base config (resolved): {"));
  CHECK(contains(r.output, "baseline=deeper__seed=0  [new; baseline, reference]"));
  CHECK(contains(r.output, "pos_embed=learned_1d__seed=1  [new; grid, vs baseline=deeper]"));
  CHECK(contains(r.output, "    model.depth=2\n"));
  CHECK(contains(r.output, "    model.pos_embed=\"none\"\n"));
  CHECK(contains(r.output, "    seed=1\n"));
  CHECK_FALSE(fs::exists(dir.file("out")));
}

TEST_CASE("every shipped experiment passes --dry-run, sweeps extend the shared recipe", "[sweep][cli]") {
  const fs::path experiments = fs::path(VITLAB_SOURCE_DIR) / "experiments";
  TempDir dir;
  int sweeps = 0, runs = 0;
  for (const auto& entry : fs::directory_iterator(experiments)) {
    if (entry.path().extension() != ".json") continue;
    const Json j = read_json(entry.path().string());
    INFO(entry.path().string());
    if (!j.contains("seeds")) {  // a single-run config such as train_tiny.json
      ++runs;
      auto r = run_vitlab("config " + entry.path().string());
      INFO(r.output);
      CHECK(r.exit_code == 0);
      continue;
    }
    ++sweeps;
    auto r = run_vitlab("sweep " + entry.path().string() + " --dry-run --out " + dir.file("o"));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "baseline="));
    CHECK(j["extends"] == "recipes/fmnist.json");
    CHECK(contains(j["command"].get<std::string>(), "experiments/" + entry.path().filename().string()));
    CHECK(contains(j["claim"].get<std::string>(), "paper"));
  }
  CHECK_FALSE(fs::exists(dir.file("o")));
  for (const char* name : {"quickstart", "pos_embed", "pooling", "hybrid", "data_size"})
    CHECK(fs::exists(experiments / (std::string(name) + ".json")));
  CHECK(sweeps >= 5);
  CHECK(runs >= 2);
}

// The committed results are what README's Findings quote: each published sweep must rebuild, from
// its own run files, the summary committed beside them, so no number there is edited by hand.
TEST_CASE("every published sweep summarizes to its committed summary", "[sweep][cli][results]") {
  const fs::path results = fs::path(VITLAB_SOURCE_DIR) / "experiments" / "results";
  TempDir dir;
  int sweeps = 0;
  for (const auto& entry : fs::directory_iterator(results)) {
    if (!fs::exists(entry.path() / "sweep.json")) continue;  // a single run's analysis, no sweep
    ++sweeps;
    const std::string copy = dir.file(entry.path().filename().string());
    fs::copy(entry.path(), copy, fs::copy_options::recursive);
    INFO(entry.path().string());
    auto r = run_vitlab("summarize " + copy);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(read_json(copy + "/summary.json") == read_json((entry.path() / "summary.json").string()));
    CHECK(test::read_text(copy + "/summary.md") == test::read_text((entry.path() / "summary.md").string()));
  }
  CHECK(sweeps >= 8);
}

TEST_CASE("the quickstart states what it measured on the CPU and keeps its recipe", "[sweep][cli]") {
  const std::string file = (fs::path(VITLAB_SOURCE_DIR) / "experiments" / "quickstart.json").string();
  const Json j = read_json(file);
  CHECK(j["expected"]["metric"] == "test_accuracy_pct");
  CHECK(j["expected"]["values"].size() == 6);
  CHECK(j["command"] == "build/vitlab sweep experiments/quickstart.json --out runs/quickstart");
  // What `make run` has always run: a CPU-sized run of the recipe, fp32 on any device.
  TempDir dir;
  auto r = run_vitlab("sweep " + file + " --dry-run --out " + dir.file("o"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "sweep quickstart (" + file + "): 6 runs = 6 variants x 1 seed"));
  const std::string base = r.output.substr(r.output.find("base config (resolved): ") + 24);
  const Json resolved = Json::parse(base.substr(0, base.find('\n')));
  CHECK(resolved["device"] == "auto");
  CHECK(resolved["train"]["precision"] == "fp32");
  CHECK(resolved["train"]["epochs"] == 6);
  CHECK(resolved["train"]["batch_size"] == 64);
  CHECK(resolved["train"]["eval_batch_size"] == 512);
  CHECK(resolved["train"]["lr"] == 0.002);
  CHECK(resolved["train"]["warmup_epochs"] == 1);
  CHECK(resolved["train"]["weight_decay"] == 0.05);
  CHECK(resolved["train"]["label_smoothing"] == 0.1);
  CHECK(resolved["data"]["train_size"] == 6500);
  CHECK(resolved["data"]["augment"]["crop_padding"] == 2);
  CHECK(resolved["model"]["width"] == 64);
  CHECK(resolved["model"]["patch_size"] == 7);
}

TEST_CASE("a sweep extending a recipe: runs, checks its expected values, refuses a changed recipe, publishes",
          "[sweep][cli][recipe]") {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(dir.path() / "recipes");
  auto write_recipe = [&](const Json& config) {
    test::write_text(dir.file("recipes/r.json"), Json{{"description", "tiny"}, {"config", config}}.dump(2));
  };
  write_recipe(tiny_base(1));
  Json j = tiny_sweep();
  j.erase("grid");
  j.erase("base");
  j["extends"] = "recipes/r.json";
  j["seeds"] = {0};
  j["expected"] = {{"metric", "test_accuracy_pct"}, {"values", {{"baseline=deeper", 50.0}, {"base", 50.0}}},
                   {"tolerance", 100.0}, {"measured_on", "nowhere, a test"}};
  const std::string file = write_sweep(dir, j);
  auto r = run_vitlab("sweep " + file + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "Expected (test accuracy %, tolerance ±100.00; measured on nowhere, a test):"));
  CHECK(contains(r.output, "2 of 2 within the tolerance."));
  const Json manifest = read_json(out + "/sweep.json");
  CHECK(manifest["recipe"]["file"] == dir.file("recipes/r.json"));
  CHECK(manifest["base"]["train"]["lr"] == 0.003);
  const std::string md = test::read_text(out + "/summary.md");
  CHECK(contains(md, "Claim: a test claim (Table 0)\n\nCommand: `vitlab sweep s.json`"));
  CHECK(contains(md, "| baseline=deeper | 50.00    |"));

  // A changed recipe changes the runs' configs: refused like any changed config.
  Json changed = tiny_base(1);
  changed["train"]["lr"] = 0.002;
  write_recipe(changed);
  auto refused = run_vitlab("sweep " + file + " --out " + out);
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.output, "run baseline=deeper__seed=0: train.lr (0.003 there, 0.002 in the sweep)"));
  write_recipe(tiny_base(1));

  // Publishing copies the results, not the checkpoints; the copy summarizes to the same summary.
  const std::string pub = dir.file("results/tiny");
  auto p = run_vitlab("summarize " + out + " --publish " + pub);
  INFO(p.output);
  REQUIRE(p.exit_code == 0);
  CHECK(contains(p.output, "published 2 runs to " + pub + ": sweep.json, summary.{md,json,csv} and "));
  for (const char* f : {"sweep.json", "summary.json", "summary.csv", "summary.md", "runs/base__seed=0/result.json",
                        "runs/base__seed=0/metrics.jsonl", "runs/baseline=deeper__seed=0/result.json",
                        "report.html", "analysis/base/analysis.json", "analysis/base/attention_distance.png"})
    CHECK(fs::is_regular_file(fs::path(pub) / f));
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(pub / fs::path("runs"))) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 4);  // no checkpoints, config.json, train.log or lock file
  CHECK(read_json(pub + "/analysis/base/analysis.json") == read_json(out + "/analysis/base/analysis.json"));
  CHECK_FALSE(fs::exists(dir.file("results/.publishing-tiny")));
  const std::string published = test::read_text(pub + "/summary.json");
  CHECK(published == test::read_text(out + "/summary.json"));
  auto again = run_vitlab("summarize " + pub);
  CHECK(again.exit_code == 0);
  CHECK(test::read_text(pub + "/summary.json") == published);

  // Never over existing results; never a sweep with unfinished runs.
  auto twice = run_vitlab("summarize " + out + " --publish " + pub);
  CHECK(twice.exit_code == 2);
  CHECK(contains(twice.output, pub + ": already exists and is not an empty folder"));
  fs::create_directories(dir.file("half/runs"));
  fs::copy_file(out + "/sweep.json", dir.file("half/sweep.json"));
  auto half = run_vitlab("summarize " + dir.file("half") + " --publish " + dir.file("results/half"));
  CHECK(half.exit_code == 2);
  CHECK(contains(half.output, dir.file("half") + ": 2 runs not finished, e.g. baseline=deeper__seed=0 (pending)"));
  CHECK_FALSE(fs::exists(dir.file("results/half")));
}

TEST_CASE("a run config may extend a recipe too (vitlab config / train)", "[config][cli][recipe]") {
  TempDir dir;
  fs::create_directories(dir.path() / "recipes");
  test::write_text(dir.file("recipes/r.json"), Json{{"description", "tiny"}, {"config", tiny_base(1)}}.dump());
  test::write_text(dir.file("run.json"),
                   Json{{"extends", "recipes/r.json"}, {"seed", 4}, {"model", {{"width", 32}}}}.dump());
  auto r = run_vitlab("config " + dir.file("run.json") + " --set train.epochs=2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json c = Json::parse(r.output);
  CHECK(c["seed"] == 4);
  CHECK(c["model"]["width"] == 32);
  CHECK(c["model"]["heads"] == 2);     // the recipe's
  CHECK(c["train"]["lr"] == 0.003);    // the recipe's
  CHECK(c["train"]["epochs"] == 2);    // --set

  test::write_text(dir.file("missing.json"), Json{{"extends", "recipes/nope.json"}, {"seed", 0}}.dump());
  auto missing = run_vitlab("train " + dir.file("missing.json") + " --out " + dir.file("o"));
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.output, dir.file("missing.json") + ": extends: recipe file " + dir.file("recipes/nope.json") + " not found"));
  CHECK_FALSE(fs::exists(dir.file("o")));

  Json bad = tiny_base(1);
  bad["train"]["optimizer"] = "adamx";
  test::write_text(dir.file("recipes/bad.json"), Json{{"description", "bad"}, {"config", bad}}.dump());
  test::write_text(dir.file("uses_bad.json"), Json{{"extends", "recipes/bad.json"}}.dump());
  auto invalid = run_vitlab("config " + dir.file("uses_bad.json"));
  CHECK(invalid.exit_code == 2);
  CHECK(contains(invalid.output, dir.file("uses_bad.json") + ": train.optimizer: unknown value \"adamx\""));
  CHECK(contains(invalid.output, "(set by the recipe " + dir.file("recipes/bad.json") + ")"));
  // --set fixes it and is then not blamed on the recipe.
  CHECK(run_vitlab("config " + dir.file("uses_bad.json") + " --set train.optimizer=sgd").exit_code == 0);
}

TEST_CASE("sweep input errors exit 2 with the problem named, before anything runs", "[sweep][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  auto expect_error = [&](const Json& sweep, const std::string& message, const std::string& extra = "") {
    const std::string file = write_sweep(dir, sweep);
    auto r = run_vitlab("sweep " + file + " --out " + out + extra);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, message));
    CHECK_FALSE(fs::exists(out));
  };
  Json j = tiny_sweep();
  j["grid"]["model.widht"] = {32};
  expect_error(j, "run pos_embed=none__widht=32__seed=0 (and 3 more): model.widht: unknown key");
  j = tiny_sweep();
  j["grid"]["model.pos_embed"] = {"none", "sideways"};
  expect_error(j, "run pos_embed=sideways__seed=0 (and 1 more): model.pos_embed: unknown value \"sideways\"");
  j = tiny_sweep();
  j["grid"]["train.lr"] = Json::array();
  expect_error(j, "s.json: grid[\"train.lr\"]: empty list; give at least one value");
  j = tiny_sweep();
  j["grid"]["model.pos_embed"] = {"none", "none"};
  expect_error(j, "duplicate run id pos_embed=none__seed=0");
  j = tiny_sweep();
  j["surprise"] = 1;
  expect_error(j, "s.json: surprise: unknown key");
  test::write_text(dir.file("a_file"), "x");
  auto r = run_vitlab("sweep " + write_sweep(dir, tiny_sweep()) + " --out " + dir.file("a_file/sub"));
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "a_file/sub: cannot create the output folder"));
  r = run_vitlab("sweep " + dir.file("missing.json"));
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "missing.json: no such file"));
  r = run_vitlab("summarize " + dir.path().string());
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "not a sweep folder"));
}

TEST_CASE("a sweep runs, summarizes, skips finished runs, refuses changed configs, --force keeps the old ones",
          "[sweep][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  // 3 epochs: after one, these tiny models still predict a single class for every seed, the
  // seeds tie, and the Welch test below has no variance to work with.
  const std::string file = write_sweep(dir, tiny_sweep(3));
  auto r = run_vitlab("sweep " + file + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "[6/6]"));
  CHECK(contains(r.output, "summary: " + out + "/summary.md"));
  for (const char* id : {"baseline=deeper__seed=0", "pos_embed=none__seed=1"}) {
    const fs::path run = fs::path(out) / "runs" / id;
    CHECK(fs::exists(run / "config.json"));
    CHECK(fs::exists(run / "metrics.jsonl"));
    CHECK(fs::exists(run / "checkpoints" / "last.pt"));
    CHECK(fs::exists(run / "train.log"));
    CHECK(read_json((run / "result.json").string())["status"] == "completed");
  }
  CHECK(read_json(out + "/runs/pos_embed=none__seed=1/config.json")["model"]["pos_embed"] == "none");
  const Json summary = read_json(out + "/summary.json");
  REQUIRE(summary["rows"].size() == 3);
  CHECK(summary["rows"][0]["variant"] == "baseline=deeper");
  CHECK(summary["rows"][1]["variant"] == "pos_embed=none");
  CHECK(summary["rows"][1]["n"] == 2);
  CHECK(summary["rows"][1]["compared_to"] == "baseline=deeper");
  CHECK(summary["rows"][1]["p_value"].is_number());
  CHECK(summary["runs"]["completed"] == 6);
  CHECK(contains(test::read_text(out + "/summary.md"), "| pos_embed=learned_1d"));
  CHECK(contains(test::read_text(out + "/summary.csv"), "\npos_embed=none,grid,baseline=deeper,2,2,"));
  CHECK(read_json(out + "/sweep.json")["runs"].size() == 6);

  // summarize rebuilds the same files from the folders alone.
  const std::string json_before = test::read_text(out + "/summary.json");
  const std::string md_before = test::read_text(out + "/summary.md");
  fs::remove(out + "/summary.json");
  auto s = run_vitlab("summarize " + out);
  CHECK(s.exit_code == 0);
  CHECK(test::read_text(out + "/summary.json") == json_before);
  CHECK(test::read_text(out + "/summary.md") == md_before);
  CHECK(contains(s.output, "| baseline=deeper"));

  // Rerunning skips every finished run.
  const std::string result_before = test::read_text(out + "/runs/pos_embed=none__seed=0/result.json");
  auto again = run_vitlab("sweep " + file + " --out " + out);
  CHECK(again.exit_code == 0);
  CHECK(contains(again.output, "6 finished, 0 to resume or retry, 0 new"));
  CHECK(test::read_text(out + "/runs/pos_embed=none__seed=0/result.json") == result_before);
  CHECK(test::read_text(out + "/summary.json") == json_before);

  // The same ids with another config are refused, naming the run and the first difference.
  Json changed = tiny_sweep(3);
  changed["base"]["train"]["lr"] = 0.002;
  write_sweep(dir, changed);
  auto refused = run_vitlab("sweep " + file + " --out " + out);
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.output, "6 run folders already hold results of a different config"));
  CHECK(contains(refused.output, "run baseline=deeper__seed=0: train.lr (0.003 there, 0.002 in the sweep)"));
  CHECK(test::read_text(out + "/runs/pos_embed=none__seed=0/result.json") == result_before);

  // --force reruns everything and moves the old folders to the trash.
  auto forced = run_vitlab("sweep " + file + " --out " + out + " --force");
  INFO(forced.output);
  CHECK(forced.exit_code == 0);
  CHECK(contains(forced.output, "--force: moved 6 existing run folder(s)"));
  CHECK(read_json(out + "/runs/pos_embed=none__seed=0/config.json")["train"]["lr"] == 0.002);
  int trashed = 0;
  for (const auto& e : fs::directory_iterator(out + "/trash")) {
    ++trashed;
    if (e.path().filename().string().rfind("pos_embed=none__seed=0-", 0) == 0)
      CHECK(test::read_text((e.path() / "result.json").string()) == result_before);
  }
  CHECK(trashed == 6);
}

TEST_CASE("a run that fails or diverges is recorded, the others complete, exit status 1", "[sweep][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  Json j = tiny_sweep();
  j.erase("grid");
  j["seeds"] = {0};
  j["variants"] = {{"broken", {{"data.dataset", "mnist-format"}, {"data.path", dir.file("no-data")}}},
                   {"diverge", {{"train.optimizer", "sgd"}, {"train.lr", 100.0}, {"train.weight_decay", 0.0},
                                {"train.epochs", 2}}}};
  const std::string file = write_sweep(dir, j);
  auto r = run_vitlab("sweep " + file + " --out " + out);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "variant=broken__seed=0: failed: "));
  CHECK(contains(r.output, "no-data"));
  CHECK(contains(r.output, "variant=diverge__seed=0: diverged: loss became"));
  const Json broken = read_json(out + "/runs/variant=broken__seed=0/result.json");
  CHECK(broken["status"] == "failed");
  CHECK(contains(broken["error"].get<std::string>(), "no-data"));
  CHECK(read_json(out + "/runs/base__seed=0/result.json")["status"] == "completed");
  CHECK(read_json(out + "/runs/baseline=deeper__seed=0/result.json")["status"] == "completed");
  const Json summary = read_json(out + "/summary.json");
  CHECK(summary["runs"]["completed"] == 2);
  CHECK(summary["runs"]["failed"] == 1);
  CHECK(summary["runs"]["diverged"] == 1);
  REQUIRE(summary["problems"].size() == 2);
  CHECK(summary["problems"][0]["id"] == "variant=broken__seed=0");
  CHECK(contains(test::read_text(out + "/summary.md"), "- variant=broken__seed=0: failed: "));
  // The report comes last and lists both problems with their errors.
  CHECK(contains(r.output, "\nreport: " + out + "/report.html\n"));
  const std::string report = test::read_text(out + "/report.html");
  const std::string problems = report.substr(report.find("id=\"problems\""));
  CHECK(contains(problems, "<code>variant=broken__seed=0</code>: <span class=\"bad\">failed</span>: "));
  CHECK(contains(problems, "no-data"));
  CHECK(contains(problems, "<code>variant=diverge__seed=0</code>: <span class=\"bad\">diverged</span>: loss became"));

  // Rerun: the failed run is retried (its old result set aside), the diverged one is final.
  const std::string diverged_before = test::read_text(out + "/runs/variant=diverge__seed=0/result.json");
  auto again = run_vitlab("sweep " + file + " --out " + out);
  CHECK(again.exit_code == 1);
  CHECK(contains(again.output, "3 finished, 1 to resume or retry, 0 new"));
  CHECK(test::read_text(out + "/runs/variant=diverge__seed=0/result.json") == diverged_before);
  int set_aside = 0;
  for (const auto& e : fs::directory_iterator(out + "/runs/variant=broken__seed=0"))
    set_aside += e.path().filename().string().rfind("result.failed-", 0) == 0;
  CHECK(set_aside == 1);
}

TEST_CASE("a killed sweep resumes to the same summary as an uninterrupted one", "[sweep][cli][resume]") {
  TempDir dir;
  Json j = tiny_sweep(3);
  j["seeds"] = {0};
  j["base"]["data"]["synthetic_train"] = 1024;
  const std::string file = write_sweep(dir, j);
  REQUIRE(run_vitlab("sweep " + file + " --out " + dir.file("whole")).exit_code == 0);

  const std::string out = dir.file("killed");
  const pid_t pid = test::spawn_vitlab({"sweep", file, "--out", out});
  const std::string first = out + "/runs/baseline=deeper__seed=0";
  const std::string second = out + "/runs/pos_embed=none__seed=0";
  test::wait_for_file(second + "/checkpoints/last.pt");
  REQUIRE(test::kill_and_wait(pid));
  REQUIRE(fs::exists(first + "/result.json"));
  // The run in flight died with the sweep (no orphan keeps writing into its folder).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE_FALSE(fs::exists(second + "/result.json"));
  const std::string first_result = test::read_text(first + "/result.json");

  auto resumed = run_vitlab("sweep " + file + " --out " + out);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(contains(resumed.output, "1 finished, 1 to resume or retry, 1 new"));
  CHECK(test::read_text(first + "/result.json") == first_result);
  CHECK(contains(test::read_text(second + "/train.log"), "resuming"));
  const Json a = read_json(dir.file("whole/summary.json")), b = read_json(out + "/summary.json");
  CHECK(accuracies(a) == accuracies(b));
  CHECK(accuracies(a).size() == 3);
  for (size_t i = 0; i < a["rows"].size(); ++i) {
    CHECK(a["rows"][i]["mean"] == b["rows"][i]["mean"]);
    CHECK(a["rows"][i]["diff"] == b["rows"][i]["diff"]);
  }
}

TEST_CASE("a second sweep in the same folder is refused while the first runs", "[sweep][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(out);
  const int fd = ::open((out + "/.sweep.lock").c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);  // as a running sweep holds it
  auto r = run_vitlab("sweep " + write_sweep(dir, tiny_sweep()) + " --out " + out);
  ::close(fd);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "another `vitlab sweep` is running in this folder"));
  CHECK_FALSE(fs::exists(out + "/runs"));
}

TEST_CASE("sweep with --jobs runs several runs at once and splits the CPU threads", "[sweep][cli]") {
  TempDir dir;
  Json j = tiny_sweep();
  j["seeds"] = {0};
  const std::string file = write_sweep(dir, j);
  auto r = run_vitlab("sweep " + file + " --out " + dir.file("out") + " --jobs 2");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, fmt::format("2 runs at a time, {} CPU thread(s) each", std::max(1, usable_cpus() / 2))));
  CHECK(read_json(dir.file("out/summary.json"))["runs"]["completed"] == 3);
  auto bad = run_vitlab("sweep " + file + " --out " + dir.file("out2") + " --jobs 0");
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.output, "--jobs: must be at least 1"));
  // --devices names GPUs that exist, for runs that use them (this sweep's run on the CPU).
  for (const char* devices : {"cuda:0", "cpu", "cuda:0,gpu1"}) {
    INFO(devices);
    auto wrong = run_vitlab("sweep " + file + " --out " + dir.file("out3") + " --devices " + devices);
    CHECK(wrong.exit_code == 2);
    CHECK(contains(wrong.output, "--devices"));
    CHECK_FALSE(fs::exists(dir.file("out3/runs")));
  }
}

TEST_CASE("stages: a later stage starts from an earlier stage's checkpoint of the same run", "[sweep][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  Json j = tiny_sweep();
  j.erase("grid");
  j["seeds"] = {0};
  j["stages"] = {{{"name", "pretrain"}, {"description", "supervised, 1 epoch"}},
                 {{"name", "finetune"}, {"set", {{"init_from", "@pretrain"}, {"train.lr", 0.001}}}}};
  j["baselines"] = {{"scratch", {{"finetune:init_from", ""}}}};
  const std::string file = write_sweep(dir, j);
  auto r = run_vitlab("sweep " + file + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const std::string run = out + "/runs/base__seed=0";
  CHECK(read_json(run + "/pretrain/result.json")["status"] == "completed");
  CHECK(read_json(run + "/finetune/result.json")["status"] == "completed");
  const Json finetune = read_json(run + "/finetune/config.json");
  CHECK(finetune["init_from"] == fs::absolute(run + "/pretrain/checkpoints/last.pt").lexically_normal().string());
  CHECK(finetune["train"]["lr"] == 0.001);
  // The import report of init_from is kept with the result (and printed in the stage's log).
  const Json init = read_json(run + "/finetune/result.json")["init_from"];
  CHECK(init["names"] == "vitlab");
  CHECK(init["head_reinitialized"] == false);
  CHECK(contains(test::read_text(run + "/finetune/train.log"), "init_from imported from"));
  CHECK_FALSE(read_json(run + "/pretrain/result.json").contains("init_from"));
  CHECK(read_json(out + "/runs/baseline=scratch__seed=0/finetune/config.json")["init_from"] == "");
  const Json summary = read_json(out + "/summary.json");
  CHECK(summary["rows"][1]["results"][0]["test_accuracy"] ==
        read_json(run + "/finetune/result.json")["test_accuracy"]);
  CHECK(read_json(out + "/sweep.json")["stages"] == Json({"pretrain", "finetune"}));

  // An interrupted second stage: summarize calls the run interrupted, the sweep finishes it.
  fs::rename(run + "/finetune/result.json", run + "/finetune/result.moved.json");
  auto s = run_vitlab("summarize " + out);
  CHECK(contains(s.output, "- base__seed=0: interrupted"));
  auto again = run_vitlab("sweep " + file + " --out " + out);
  CHECK(again.exit_code == 0);
  CHECK(contains(again.output, "1 finished, 1 to resume or retry, 0 new"));
}

TEST_CASE("stages: masked-patch pretraining on the rest of the set, a skipped stage, few-shot columns",
          "[sweep][cli][masked_patch]") {
  TempDir dir;
  const std::string out = dir.file("out");
  Json j = tiny_sweep();
  j.erase("grid");
  j.erase("baselines");
  j["seeds"] = {0};
  j["base"]["data"]["train_size"] = 64;
  j["base"]["data"]["val_size"] = 0;
  j["stages"] = {{{"name", "pretrain"},
                  {"set", {{"data.train_part", "rest"}, {"data.val_size", 32}, {"train.objective", "masked_patch"}}}},
                 {{"name", "finetune"}, {"set", {{"init_from", "@pretrain"}, {"train.fewshot.shots", {1, 2}},
                                                 {"train.fewshot.seeds", 2}}}}};
  j["grid"] = {{"start", {{"masked_patch", Json::object()},
                          {"supervised", {{"pretrain:train.objective", "supervised"}}}}}};
  j["baselines"] = {{"scratch", {{"pretrain:skip", true}, {"finetune:init_from", ""}}}};
  auto r = run_vitlab("sweep " + write_sweep(dir, j) + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const std::string mpp = out + "/runs/start=masked_patch__seed=0";
  const Json pre = read_json(mpp + "/pretrain/result.json");
  CHECK(pre["train_images"] == 256 - 64 - 32);  // the rest of the 64-image draw, less validation
  CHECK(pre["test_masked_accuracy"].is_number());
  CHECK_FALSE(pre.contains("test_accuracy"));
  const std::string metrics = test::read_text(mpp + "/pretrain/metrics.jsonl");
  const Json epoch = Json::parse(metrics.substr(0, metrics.find('\n')));
  CHECK(epoch["val_masked_loss"].is_number());
  CHECK(epoch["val_masked_accuracy"].is_number());
  CHECK(epoch["train_masked_accuracy"].is_number());
  CHECK(contains(test::read_text(mpp + "/pretrain/train.log"), "val masked acc"));

  const Json fine = read_json(mpp + "/finetune/result.json");
  CHECK(fine["train_images"] == 64);
  CHECK(fine["init_from"]["dropped"][0].get<std::string>().rfind("masked_patch.", 0) == 0);
  CHECK(fine["init_from"]["new"] == Json{"head.weight", "head.bias"});
  CHECK(fine["fewshot"]["shots"]["2"]["accuracies"].size() == 2);
  // The scratch row skips the pretraining stage: no folder, and the sweep counts it as done.
  CHECK_FALSE(fs::exists(out + "/runs/baseline=scratch__seed=0/pretrain"));
  const Json summary = read_json(out + "/summary.json");
  CHECK(summary["runs"]["completed"] == 3);
  for (const auto& row : summary["rows"]) CHECK(row["fewshot"]["1"]["n"] == 1);
  const std::string md = test::read_text(out + "/summary.md");
  CHECK(contains(md, "1-shot %"));
  CHECK(contains(md, "2-shot %"));
  CHECK(contains(test::read_text(out + "/summary.csv"), "fewshot_2_mean"));
  const Json manifest = read_json(out + "/sweep.json");
  for (const auto& run : manifest["runs"])
    if (run["id"] == "baseline=scratch__seed=0") CHECK(run["stages"] == Json{"finetune"});
  // The report draws the stages in the sweep's order (the first run skips pretraining), and says
  // which accuracy each stage measured: masked-patch validation accuracy while pretraining.
  const std::string report = test::read_text(out + "/report.html");
  const size_t pretrain = report.find("Training loss (stage pretrain)"), finetune = report.find("Training loss (stage finetune)");
  CHECK(pretrain != std::string::npos);
  CHECK(finetune != std::string::npos);
  CHECK(pretrain < finetune);
  CHECK(contains(report, "Accuracy per epoch: val_accuracy, val_masked_accuracy (stage pretrain)"));
  CHECK(contains(report, "Accuracy per epoch: train_accuracy (stage finetune)"));

  // Rerunning finds every run done; a skip without a stage is an error naming where it was set.
  auto again = run_vitlab("sweep " + dir.file("s.json") + " --out " + out);
  CHECK(again.exit_code == 0);
  CHECK(contains(again.output, "3 finished"));
  j["baselines"]["scratch"] = {{"skip", true}, {"finetune:init_from", ""}};
  auto bad = run_vitlab("sweep " + write_sweep(dir, j, "bad.json") + " --out " + dir.file("bad"));
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.output, "\"skip\" takes a stage"));
}
