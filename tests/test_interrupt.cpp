// Interruptions and faults, as a user meets them: Ctrl-C or SIGTERM to `vitlab train` and to
// `vitlab sweep`, a sweep killed at random points, a process killed while it writes a checkpoint,
// a full disk, and a run that runs out of memory inside a sweep. In every case the rerun must end
// where an uninterrupted run ends, bit for bit on the CPU, and nothing half-written is taken for a
// result.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "test_helpers.h"
#include "train/checkpoint.h"

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// 34 steps an epoch with dropout, drop path and every augmentation, so that an exact resume
// inside an epoch needs the random streams and the epoch's sums restored.
Json stoppable_run(int epochs = 3) {
  return Json{{"seed", 5},
              {"device", "cpu"},
              {"model", {{"name", "vit_tiny_p4_28"}, {"width", 32}, {"heads", 2}, {"depth", 2},
                         {"mlp_dim", 64}, {"patch_size", 7}, {"drop_path", 0.1}, {"dropout", 0.1}}},
              {"data", {{"dataset", "synthetic"}, {"synthetic_train", 1024}, {"synthetic_test", 256},
                        {"val_size", 64},
                        {"augment", {{"crop_padding", 2}, {"flip", true}, {"random_erasing", 0.25},
                                     {"mixup_alpha", 0.2}}}}},
              {"train", {{"epochs", epochs}, {"batch_size", 28}, {"lr", 0.003}, {"warmup_epochs", 1},
                         {"grad_clip", 1.0}, {"threads", 1}}}};
}

Json read_json(const std::string& path) { return Json::parse(test::read_text(path)); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// metrics.jsonl without its timings: the numbers an exact resume must reproduce.
std::vector<Json> metrics_without_timing(const std::string& path) {
  std::vector<Json> out;
  std::istringstream lines(test::read_text(path));
  for (std::string line; std::getline(lines, line);) {
    Json record = Json::parse(line);
    record.erase("epoch_seconds");
    record.erase("images_per_second");
    out.push_back(record);
  }
  return out;
}

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// Seconds `work` took. Signals land at random fractions of an uninterrupted run's duration on this
// machine, not at fixed times: a run that took 5 s on one machine took 1.5 s on another, and ended
// before stops asked for after 2 s.
double timed(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Every run folder's final numbers by id: what must not change however a sweep was interrupted.
std::map<std::string, std::pair<double, double>> run_results(const std::string& sweep_dir) {
  std::map<std::string, std::pair<double, double>> out;
  for (const auto& entry : fs::directory_iterator(sweep_dir + "/runs")) {
    const Json r = read_json((entry.path() / "result.json").string());
    REQUIRE(r["status"] == "completed");
    out[entry.path().filename().string()] = {r["test_accuracy"].get<double>(), r["test_loss"].get<double>()};
  }
  return out;
}

}  // namespace

TEST_CASE("SIGINT or SIGTERM stops vitlab train after a step, and resuming gives the uninterrupted run", "[interrupt][cli]") {
  TempDir dir;
  const std::string config = dir.file("run.json");
  test::write_text(config, stoppable_run().dump());
  const double whole_s = test::seconds_after_file({"train", config, "--quiet", "--out", dir.file("whole")},
                                                  dir.file("whole/config.json"));

  std::mt19937 rng(20261129);
  int inside_epoch = 0;
  const int signals[] = {SIGINT, SIGTERM, SIGINT};
  for (int k = 0; k < 3; ++k) {
    const int sig = signals[k];
    const std::string out = dir.file(fmt::format("stopped-{}-{}", k, sig));
    const pid_t pid = test::spawn_vitlab({"train", config, "--quiet", "--out", out}, out + ".log");
    REQUIRE(test::wait_for_file(out + "/config.json", 120));
    sleep_seconds(std::uniform_real_distribution<double>(0.15, 0.6)(rng) * whole_s);
    ::kill(pid, sig);
    const int status = test::wait_exit_status(pid);
    const std::string log = test::read_text(out + ".log");
    INFO(log);
    if (status == 0) continue;  // it finished first: nothing to stop
    REQUIRE(status == 128 + sig);
    CHECK(contains(log, sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)"));
    const Json stopped = read_json(out + "/result.json");
    CHECK(stopped["status"] == "interrupted");
    CHECK(stopped["stopped_by"] == (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    CHECK(contains(stopped["error"].get<std::string>(), "vitlab train --resume " + out));
    const Checkpoint at = load_checkpoint(out + "/checkpoints/last.pt");
    REQUIRE(at.epoch_position.is_object());
    inside_epoch += at.epoch_position["step"].get<int64_t>() > 0;
    CHECK(at.epochs_done == at.epoch_position["epoch"].get<int64_t>());

    const auto resumed = run_vitlab("train --resume " + out + " --quiet");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::expect_same_weights(dir.file("whole/checkpoints/last.pt"), out + "/checkpoints/last.pt");
    CHECK(metrics_without_timing(out + "/metrics.jsonl") == metrics_without_timing(dir.file("whole/metrics.jsonl")));
    const Json a = read_json(dir.file("whole/result.json")), b = read_json(out + "/result.json");
    CHECK(b["status"] == "completed");
    CHECK(a["test_accuracy"] == b["test_accuracy"]);
    CHECK(a["test_loss"] == b["test_loss"]);
  }
  CHECK(inside_epoch >= 1);  // at least one stop landed inside an epoch, not at its start
}

TEST_CASE("a process killed while writing a checkpoint leaves the previous one, and resume continues", "[interrupt][cli]") {
  TempDir dir;
  const std::string config = dir.file("run.json");
  test::write_text(config, stoppable_run().dump());
  REQUIRE(run_vitlab("train " + config + " --quiet --out " + dir.file("whole")).exit_code == 0);
  const auto size = fs::file_size(dir.file("whole/checkpoints/last.pt"));

  // A run stopped inside its first epoch, so that the next checkpoint replaces an existing one.
  const std::string base = dir.file("base");
  const pid_t pid = test::spawn_vitlab({"train", config, "--quiet", "--out", base}, base + ".log");
  REQUIRE(test::wait_for_file(base + "/config.json", 120));
  sleep_seconds(0.3);
  ::kill(pid, SIGINT);
  REQUIRE(test::wait_exit_status(pid) == 128 + SIGINT);
  const Checkpoint before = load_checkpoint(base + "/checkpoints/last.pt");

  std::mt19937_64 rng(7);
  for (const uint64_t offset : {uint64_t(0), uint64_t(1), uint64_t(100), size / 2, size - 1,
                                std::uniform_int_distribution<uint64_t>(2, size - 2)(rng)}) {
    const std::string out = dir.file(fmt::format("killed-at-{}", offset));
    fs::copy(base, out, fs::copy_options::recursive);
    const auto killed = run_vitlab("train --resume " + out + " --quiet",
                                   fmt::format("VITLAB_TEST_KILL_WRITE=checkpoints/last.pt:{}", offset));
    INFO(offset << " of " << size << " bytes: " << killed.output);
    REQUIRE(killed.exit_code == 128 + SIGKILL);
    // The temporary file holds the bytes written so far; last.pt is the one before.
    int leftovers = 0;
    for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
      leftovers += contains(e.path().filename().string(), "last.pt.tmp-");
    CHECK(leftovers == 1);
    const Checkpoint still = load_checkpoint(out + "/checkpoints/last.pt");
    CHECK(still.steps_done == before.steps_done);
    // The stop's result.json went when the resume began: a crash after it is not another stop.
    CHECK_FALSE(fs::exists(out + "/result.json"));

    const auto resumed = run_vitlab("train --resume " + out + " --quiet");
    REQUIRE(resumed.exit_code == 0);
    test::expect_same_weights(dir.file("whole/checkpoints/last.pt"), out + "/checkpoints/last.pt");
    for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
      CHECK_FALSE(contains(e.path().filename().string(), ".tmp-"));
  }
}

TEST_CASE("a real kill -9 at random times: each resume continues, the end is the uninterrupted run", "[interrupt][cli]") {
  TempDir dir;
  const std::string config = dir.file("run.json");
  test::write_text(config, stoppable_run(4).dump());
  const double whole_s = timed([&] {
    REQUIRE(run_vitlab("train " + config + " --quiet --out " + dir.file("whole")).exit_code == 0);
  });
  const std::string out = dir.file("killed");
  std::mt19937 rng(11);
  int kills = 0;
  double start_s = 0;  // from spawning to the run folder's config.json: the process's start-up
  for (int attempt = 0; attempt < 8 && !fs::exists(out + "/result.json"); ++attempt) {
    const bool begun = attempt > 0;
    const pid_t pid = test::spawn_vitlab(begun ? std::vector<std::string>{"train", "--resume", out, "--quiet"}
                                               : std::vector<std::string>{"train", config, "--quiet", "--out", out},
                                         dir.file("killed.log"));
    if (!begun) start_s = timed([&] { REQUIRE(test::wait_for_file(out + "/config.json", 120)); });
    else sleep_seconds(start_s);
    // Within about a quarter of the training (the run's time after start-up), so that several
    // kills land before the epochs, each checkpointed, run out.
    sleep_seconds(std::uniform_real_distribution<double>(0.1, 0.3)(rng) * std::max(whole_s - start_s, 0.1));
    kills += test::kill_and_wait(pid);
  }
  CHECK(kills >= 3);
  if (!fs::exists(out + "/result.json")) REQUIRE(run_vitlab("train --resume " + out + " --quiet").exit_code == 0);
  CHECK(read_json(out + "/result.json")["status"] == "completed");
  test::expect_same_weights(dir.file("whole/checkpoints/last.pt"), out + "/checkpoints/last.pt");
  CHECK(metrics_without_timing(out + "/metrics.jsonl") == metrics_without_timing(dir.file("whole/metrics.jsonl")));
}

TEST_CASE("a full disk: a clear error naming the file, no half-written checkpoint or result", "[interrupt][cli]") {
  TempDir dir;
  const std::string config = dir.file("run.json");
  test::write_text(config, stoppable_run(1).dump());
  // ulimit -f: files may grow to 64 KiB, enough for config.json but not for a checkpoint; the write
  // fails with EFBIG as it would with ENOSPC on a full disk.
  const std::string out = dir.file("full");
  const auto r = test::run_command(fmt::format("ulimit -f 64; {} train {} --quiet --out {}", VITLAB_BINARY, config, out));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  // best.pt is written first, then last.pt: whichever fails first is named.
  CHECK(contains(r.output, out + "/checkpoints/best.pt: cannot write: File too large (is the disk full?)"));
  CHECK_FALSE(fs::exists(out + "/checkpoints/best.pt"));
  CHECK_FALSE(fs::exists(out + "/checkpoints/last.pt"));
  CHECK_FALSE(fs::exists(out + "/result.json"));
  for (const auto& folder : {out, out + "/checkpoints"})
    for (const auto& e : fs::directory_iterator(folder)) CHECK_FALSE(contains(e.path().filename().string(), ".tmp-"));
  // With room again, the same command in the same folder starts the run afresh and completes.
  const auto again = run_vitlab("train --resume " + out + " --quiet");
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(read_json(out + "/result.json")["status"] == "completed");
}

namespace {
// A sweep of 6 runs (2 position embeddings and a deeper baseline, 2 seeds) of 6 epochs, one CPU
// thread each: about a second a run, so that signals land inside runs.
std::string stoppable_sweep(const TempDir& dir) {
  Json j = test::tiny_sweep(6);
  j["base"]["data"]["synthetic_train"] = 512;
  j["base"]["train"]["threads"] = 1;
  test::write_text(dir.file("s.json"), j.dump(2));
  return dir.file("s.json");
}
}  // namespace

TEST_CASE("SIGINT to vitlab sweep stops its runs after their current step, and rerunning resumes them", "[interrupt][cli][sweep]") {
  TempDir dir;
  const std::string file = stoppable_sweep(dir);
  REQUIRE(run_vitlab("sweep " + file + " --jobs 2 --out " + dir.file("whole")).exit_code == 0);

  const std::string out = dir.file("stopped");
  const pid_t pid = test::spawn_vitlab({"sweep", file, "--jobs", "2", "--out", out}, dir.file("stopped.log"));
  // Once a run trains (its metrics.jsonl is written after it set up its signal handlers).
  const auto training = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out + "/runs", ec))
      if (fs::exists(e.path() / "metrics.jsonl")) return true;
    return false;
  };
  for (int i = 0; i < 3000 && !training(); ++i) sleep_seconds(0.02);
  REQUIRE(training());  // a run is past its first epoch, with five to go
  ::kill(pid, SIGINT);
  const int status = test::wait_exit_status(pid);
  const std::string log = test::read_text(dir.file("stopped.log"));
  INFO(log);
  REQUIRE(status == 128 + SIGINT);
  CHECK(contains(log, "running run(s) asked to stop after their current step"));
  CHECK(contains(log, "sweep stopped by SIGINT: rerun the same command to resume its runs"));
  const Json summary = read_json(out + "/summary.json");
  CHECK(summary["runs"]["interrupted"].get<int>() + summary["runs"]["pending"].get<int>() >= 1);
  CHECK(summary["runs"]["failed"] == 0);
  int stopped = 0;
  for (const auto& e : fs::directory_iterator(out + "/runs")) {
    if (!fs::exists(e.path() / "result.json")) continue;
    const Json r = read_json((e.path() / "result.json").string());
    if (r["status"] != "interrupted") continue;
    ++stopped;
    CHECK(r["stopped_by"] == "SIGTERM");  // the sweep passes a stop on to its runs as SIGTERM
    CHECK(fs::exists(e.path() / "checkpoints" / "last.pt"));
  }
  CHECK(stopped >= 1);

  const auto again = run_vitlab("sweep " + file + " --jobs 2 --out " + out);
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(contains(again.output, "to resume or retry"));
  CHECK(run_results(out) == run_results(dir.file("whole")));
}

TEST_CASE("a sweep killed or stopped at ten random points ends with the uninterrupted sweep's results", "[interrupt][cli][sweep]") {
  TempDir dir;
  const std::string file = stoppable_sweep(dir);
  REQUIRE(run_vitlab("sweep " + file + " --out " + dir.file("whole")).exit_code == 0);

  const std::string out = dir.file("killed");
  std::mt19937 rng(29);
  int landed = 0, attempts = 0;
  for (; attempts < 40 && landed < 10; ++attempts) {
    const pid_t pid = test::spawn_vitlab({"sweep", file, "--out", out}, dir.file("killed.log"));
    sleep_seconds(std::uniform_real_distribution<double>(0.3, 1.2)(rng));
    const int sig = attempts % 3 == 0 ? SIGKILL : attempts % 3 == 1 ? SIGTERM : SIGINT;
    ::kill(pid, sig);
    const int status = test::wait_exit_status(pid);
    INFO("attempt " << attempts << ": signal " << sig << ", status " << status);
    if (status == 0) break;  // the sweep finished before the signal
    CHECK(status == 128 + sig);
    ++landed;
    if (sig == SIGKILL) sleep_seconds(0.2);  // its runs die with it (PR_SET_PDEATHSIG)
  }
  CHECK(landed >= 10);
  const auto last = run_vitlab("sweep " + file + " --out " + out);
  INFO(test::read_text(dir.file("killed.log")) << last.output);
  REQUIRE(last.exit_code == 0);
  CHECK(run_results(out) == run_results(dir.file("whole")));
}

TEST_CASE("a run out of memory inside a sweep is recorded as failed with its message, the others finish", "[interrupt][cli][sweep]") {
  TempDir dir;
  Json j = test::tiny_sweep(1);
  j.erase("grid");
  j["seeds"] = {0};
  // One weight matrix of 2^36 bytes: more than the address space the sweep is given below.
  j["variants"] = {{"huge", {{"model.width", 65536}, {"model.heads", 2}, {"model.mlp_dim", 262144}}}};
  test::write_text(dir.file("s.json"), j.dump(2));
  const std::string out = dir.file("out");
  // ulimit -v: a memory cap that the sweep and its runs inherit, far above what a tiny run needs.
  const auto r = test::run_command(fmt::format("ulimit -v 8000000; {} sweep {} --out {}", VITLAB_BINARY,
                                               dir.file("s.json"), out));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output, "variant=huge__seed=0: failed: "));
  const Json huge = read_json(out + "/runs/variant=huge__seed=0/result.json");
  CHECK(huge["status"] == "failed");
  CHECK(contains(huge["error"].get<std::string>(), "memory"));
  CHECK(read_json(out + "/runs/base__seed=0/result.json")["status"] == "completed");
  CHECK(read_json(out + "/runs/baseline=deeper__seed=0/result.json")["status"] == "completed");
  CHECK(read_json(out + "/summary.json")["runs"]["failed"] == 1);
}
