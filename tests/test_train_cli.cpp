// `vitlab train` / `vitlab eval` as a user runs them: determinism, kill + resume, divergence,
// output-folder safety, exit statuses.
#include <chrono>
#include <thread>

#include "test_helpers.h"
#include "train/checkpoint.h"

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;
namespace fs = std::filesystem;

namespace {
// A small synthetic run: 64 steps an epoch, about a second an epoch on 2 cores.
Json small_run(int epochs = 4) {
  return Json{{"seed", 3},
              {"device", "cpu"},
              {"model", {{"name", "vit_tiny_p4_28"}, {"width", 32}, {"heads", 2}, {"depth", 2},
                         {"mlp_dim", 64}, {"patch_size", 7}, {"drop_path", 0.1}, {"dropout", 0.1}}},
              {"data", {{"dataset", "synthetic"}, {"synthetic_train", 2048}, {"synthetic_test", 256},
                        {"val_size", 128},
                        {"augment", {{"crop_padding", 2}, {"flip", true}, {"random_erasing", 0.25},
                                     {"mixup_alpha", 0.2}}}}},
              {"train", {{"epochs", epochs}, {"batch_size", 30}, {"lr", 0.003}, {"warmup_epochs", 1},
                         {"grad_clip", 1.0}, {"label_smoothing", 0.1}, {"threads", 2}}}};
}

size_t count_lines(const std::string& path) {
  std::string text = test::read_text(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}
}  // namespace

TEST_CASE("same config and seed give the same final weights, eval reproduces the result", "[train][cli]") {
  TempDir dir;
  test::write_text(dir.file("run.json"), small_run(2).dump());
  auto first = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("a"));
  REQUIRE(first.exit_code == 0);
  auto second = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("b"));
  REQUIRE(second.exit_code == 0);
  test::expect_same_weights(dir.file("a/checkpoints/last.pt"), dir.file("b/checkpoints/last.pt"));

  const Json result = Json::parse(test::read_text(dir.file("a/result.json")));
  CHECK(result["status"] == "completed");
  CHECK(result["epochs_completed"] == 2);
  CHECK(result["config"]["model"]["width"] == 32);
  CHECK(result["parameters"].get<int64_t>() > 0);
  CHECK(result["test_images"] == 256);
  CHECK(result.contains("git_commit"));
  CHECK(result["best_val_accuracy"].is_number());
  CHECK(count_lines(dir.file("a/metrics.jsonl")) == 2);
  CHECK(Json::parse(test::read_text(dir.file("a/config.json"))) == result["config"]);

  auto eval = run_vitlab("eval " + dir.file("a/checkpoints/last.pt") + " --device cpu");
  REQUIRE(eval.exit_code == 0);
  const Json e = Json::parse(eval.output.substr(eval.output.find('{')));
  CHECK(e["accuracy"].get<double>() == Approx(result["test_accuracy"].get<double>()));
  CHECK(e["images"] == 256);
}

TEST_CASE("a killed vitlab train resumes to the same final weights", "[train][cli][resume]") {
  TempDir dir;
  test::write_text(dir.file("run.json"), small_run(4).dump());
  REQUIRE(run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("whole")).exit_code == 0);

  // Start a real process and SIGKILL it once the first epoch's checkpoint is on disk.
  const std::string out = dir.file("killed"), config = dir.file("run.json");
  const pid_t pid = test::spawn_vitlab({"train", config, "--quiet", "--out", out});
  test::wait_for_file(out + "/checkpoints/last.pt");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the second epoch
  REQUIRE(test::kill_and_wait(pid));
  REQUIRE_FALSE(fs::exists(out + "/result.json"));  // it really was cut off mid-run
  const auto done_before = load_checkpoint(out + "/checkpoints/last.pt").epochs_done;
  REQUIRE(done_before >= 1);
  REQUIRE(done_before < 4);

  auto resumed = run_vitlab("train --resume " + out + " --quiet");
  REQUIRE(resumed.exit_code == 0);
  test::expect_same_weights(dir.file("whole/checkpoints/last.pt"), out + "/checkpoints/last.pt");
  CHECK(count_lines(out + "/metrics.jsonl") == 4);
  const Json a = Json::parse(test::read_text(dir.file("whole/result.json")));
  const Json b = Json::parse(test::read_text(out + "/result.json"));
  CHECK(a["test_accuracy"] == b["test_accuracy"]);
}

TEST_CASE("checkpoint_every: fewer writes, the same last and best checkpoints", "[train][cli]") {
  TempDir dir;
  test::write_text(dir.file("every1.json"), small_run(3).dump());
  Json sparse = small_run(3);
  sparse["train"]["checkpoint_every"] = 2;  // writes after epochs 2 and 3 (the last is always written)
  test::write_text(dir.file("every2.json"), sparse.dump());
  REQUIRE(run_vitlab("train " + dir.file("every1.json") + " --quiet --out " + dir.file("a")).exit_code == 0);
  REQUIRE(run_vitlab("train " + dir.file("every2.json") + " --quiet --out " + dir.file("b")).exit_code == 0);
  test::expect_same_weights(dir.file("a/checkpoints/last.pt"), dir.file("b/checkpoints/last.pt"));
  // best.pt holds the best epoch's state even when that epoch was not a checkpoint epoch.
  const Json result = Json::parse(test::read_text(dir.file("b/result.json")));
  const auto best = load_checkpoint(dir.file("b/checkpoints/best.pt"));
  CHECK(best.epochs_done == result["best_epoch"].get<int64_t>());
  CHECK(best.best_val_accuracy == result["best_val_accuracy"].get<double>());
  test::expect_same_weights(dir.file("a/checkpoints/best.pt"), dir.file("b/checkpoints/best.pt"));
  CHECK(load_checkpoint(dir.file("b/checkpoints/last.pt")).epochs_done == 3);
  CHECK(count_lines(dir.file("b/metrics.jsonl")) == 3);  // metrics are still written every epoch
}

TEST_CASE("a diverging run stops with status diverged and keeps its folder", "[train][cli]") {
  TempDir dir;
  Json run = small_run(3);
  run["train"] = {{"epochs", 3}, {"batch_size", 64}, {"optimizer", "sgd"}, {"lr", 100.0},
                  {"weight_decay", 0.0}, {"momentum", 0.9}};
  test::write_text(dir.file("run.json"), run.dump());
  auto r = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("d"));
  CHECK(r.exit_code == 3);
  CHECK(r.output.find("run diverged") != std::string::npos);
  const Json result = Json::parse(test::read_text(dir.file("d/result.json")));
  CHECK(result["status"] == "diverged");
  CHECK(result["error"].get<std::string>().find("loss became") != std::string::npos);
  CHECK(fs::exists(dir.file("d/config.json")));
}

TEST_CASE("output folders: an existing run is never overwritten, unwritable folders exit 2", "[train][cli]") {
  TempDir dir;
  test::write_text(dir.file("run.json"), small_run(1).dump());
  REQUIRE(run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("r")).exit_code == 0);
  const std::string before = test::read_text(dir.file("r/result.json"));
  auto again = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("r"));
  CHECK(again.exit_code == 2);
  CHECK(again.output.find("already holds a run") != std::string::npos);
  CHECK(test::read_text(dir.file("r/result.json")) == before);

  test::write_text(dir.file("a_file"), "x");
  auto bad = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("a_file/sub"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("a_file/sub") != std::string::npos);

  // Resuming with another config is refused.
  auto other = run_vitlab("train " + dir.file("run.json") + " --quiet --resume " + dir.file("r") +
                          " --set train.lr=0.1");
  CHECK(other.exit_code == 2);
  CHECK(other.output.find("written for another config") != std::string::npos);
}

TEST_CASE("model and data that do not fit are config errors before anything is written", "[train][cli]") {
  TempDir dir;
  Json run = small_run(1);
  run["data"]["dataset"] = "fashion-mnist";
  run["data"]["train_size"] = 200;
  run["model"]["num_classes"] = 7;
  test::write_text(dir.file("run.json"), run.dump());
  auto r = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("o"));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("model.num_classes: 7 but the data set has 10 classes") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("o")));
  auto big_batch = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("o") +
                              " --set model.num_classes=10 --set train.batch_size=5000");
  CHECK(big_batch.exit_code == 2);
  CHECK(big_batch.output.find("train.batch_size: 5000 is larger than the training set") != std::string::npos);
  auto bf16 = run_vitlab("train " + dir.file("run.json") + " --quiet --set model.num_classes=10 "
                         "--set train.precision=bf16 --out " + dir.file("o"));
  CHECK(bf16.exit_code == 2);
  CHECK(bf16.output.find("train.precision") != std::string::npos);
}

TEST_CASE("vitlab eval --fewshot, masked-patch and few-shot settings that cannot work exit 2", "[train][cli][fewshot]") {
  TempDir dir;
  test::write_text(dir.file("run.json"), small_run(1).dump());
  REQUIRE(run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("a")).exit_code == 0);
  const std::string ck = dir.file("a/checkpoints/last.pt");
  auto few = run_vitlab("eval " + ck + " --device cpu --fewshot 1,5 --seeds 2");
  INFO(few.output);
  REQUIRE(few.exit_code == 0);
  const Json j = Json::parse(few.output.substr(few.output.find('{'), few.output.rfind('}') - few.output.find('{') + 1));
  CHECK(j["shots"]["1"]["accuracies"].size() == 2);
  CHECK(j["shots"]["5"]["mean"].get<double>() > 0.0);
  CHECK(j["test_images"] == 256);
  CHECK(j["feature_dim"] == 32);
  CHECK(few.output.find("few-shot 1-shot ") != std::string::npos);

  auto big = run_vitlab("eval " + ck + " --device cpu --fewshot 1,100000");
  CHECK(big.exit_code == 2);
  CHECK(big.output.find("--fewshot: 100000 images per class, but class") != std::string::npos);
  auto word = run_vitlab("eval " + ck + " --device cpu --fewshot 1,five");
  CHECK(word.exit_code == 2);
  CHECK(word.output.find("\"five\" is not a positive whole number") != std::string::npos);

  auto mixed = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("b") +
                          " --set train.objective=masked_patch");
  CHECK(mixed.exit_code == 2);
  CHECK(mixed.output.find("data.augment.mixup_alpha: mixes labels") != std::string::npos);
  auto rate = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("c") +
                         " --set train.masked_patch.corruption_rate=1");
  CHECK(rate.exit_code == 2);
  CHECK(rate.output.find("train.masked_patch.corruption_rate: 1 is outside (0, 1)") != std::string::npos);
  auto shots = run_vitlab("train " + dir.file("run.json") + " --quiet --out " + dir.file("d") +
                          " --set train.fewshot.shots=[1,5000]");
  CHECK(shots.exit_code == 2);
  CHECK(shots.output.find("train.fewshot.shots: 5000 images per class") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("d/result.json")));
}
