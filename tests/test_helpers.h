// Helpers shared by the test files.
#pragma once
#include <catch2/catch.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "config/run_config.h"
#include "models/classifier.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"

namespace vitlab::test {

// A fresh, empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "vitlab-test");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);
// Writes raw bytes, creating the parent folders.
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// Runs `body`, requires a DataError whose message contains every string in `parts`.
template <typename F>
void require_data_error(F body, const std::vector<std::string>& parts) {
  try {
    body();
    FAIL("no DataError thrown");
  } catch (const DataError& e) {
    const std::string message = e.what();
    INFO("message: " << message);
    for (const auto& part : parts) CHECK(message.find(part) != std::string::npos);
  }
}

// `per_class` 8x8 RGB PNGs in each of the classes "a" and "b" under root/split/<class>/imgN.png,
// their pixels depending on the class and N (streamed image-folder tests).
void write_png_split(const std::string& root, const std::string& split, int per_class);
// A one-block ViT for those folders' 8x8 RGB images in 2 classes.
Json tiny_folder_model();

// A model built from `seed`, then every parameter randomised so that nothing is zero or one by
// init (weights tests compare logits after export/import), in eval mode.
ImageClassifier random_model(const ModelConfig& c, uint64_t seed);

// The model of `run` (train/objective.h: build_run_model, so a masked-patch run has its head),
// built after torch::manual_seed(seed) and saved untrained as a vitlab checkpoint at `path`.
// Returns the checkpoint.
Checkpoint save_run_checkpoint(const RunConfig& run, const std::string& path, uint64_t seed);
// The two checkpoints hold equal weights and optimiser state, after the same number of steps
// (REQUIRE on every tensor: an exact resume reproduces them bit for bit).
void expect_same_weights(const std::string& a, const std::string& b);

// A ViT run config (width 16, one block) on 256 synthetic images: about a second per run on 2
// cores, most of it process start-up.
Json tiny_base(int epochs = 1);
// A sweep file of it: pos_embed none and learned_1d, seeds 0 and 1, a deeper baseline; its
// description, claim, command and "not yet measured" expected values filled in.
Json tiny_sweep(int epochs = 1);

// Runs the vitlab program with `args` (a shell-quoted string), capturing stdout+stderr.
// `environment`: arguments for env(1) in front of it, e.g. "-u GOMP_SPINCOUNT VITLAB_CPU_RUNTIME=off".
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult run_vitlab(const std::string& args, const std::string& environment = "");
// A shell command's exit status and output (stdout and stderr together).
CommandResult run_command(const std::string& command);

// Starts the vitlab program with `args` (no shell) in the background, its stdout sent to /dev/null
// (and stderr too, to the file `log` when one is named); for tests that kill or signal a real
// process mid-run.
pid_t spawn_vitlab(const std::vector<std::string>& args, const std::string& log = "");
// Waits for the process and returns its exit status, or 128 + the signal that killed it.
int wait_exit_status(pid_t pid);
// Waits until `path` exists (true) or `seconds` pass (false).
bool wait_for_file(const std::string& path, double seconds = 180);
// Runs vitlab with `args` to completion (exit status 0 required) and returns the seconds from
// `file` appearing to the exit: tests that signal a run mid-way sleep a share of this after the
// same file appears. Start-up before it (loading CUDA's libraries, listing a folder) varies by
// machine far more than the steps after it, and a share of the whole time ended after the run on
// the GPU machine.
double seconds_after_file(const std::vector<std::string>& args, const std::string& file,
                          const std::string& log = "");
// SIGKILLs the process and reaps it; returns true when it died of the signal (had not finished).
bool kill_and_wait(pid_t pid);

}  // namespace vitlab::test

namespace vitlab::test {
// torch::allclose after casting both to float32 (bf16 results against float32 references).
inline bool allclose_as_float(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  return torch::allclose(a.to(torch::kFloat), b.to(torch::kFloat), rtol, atol);
}
// |a - b| <= tolerance * max |b|: for sums of bf16-rounded products, whose rounding error
// scales with the partial sums, not with each element.
inline bool close_to_scale(const torch::Tensor& a, const torch::Tensor& b, double tolerance) {
  const auto fa = a.to(torch::kFloat), fb = b.to(torch::kFloat);
  return (fa - fb).abs().max().item<double>() <= tolerance * fb.abs().max().item<double>();
}

// Matches an exception whose what() contains a substring.
class MessageContains : public Catch::MatcherBase<std::exception> {
 public:
  explicit MessageContains(std::string part) : part_(std::move(part)) {}
  bool match(const std::exception& e) const override {
    return std::string(e.what()).find(part_) != std::string::npos;
  }
  std::string describe() const override { return "message contains \"" + part_ + "\""; }

 private:
  std::string part_;
};
}  // namespace vitlab::test

// First line of a [cuda] test: where no CUDA device exists it warns and returns (passes).
#define SKIP_WITHOUT_CUDA()                  \
  do {                                       \
    if (!torch::cuda::is_available()) {      \
      WARN("no CUDA device: skipped");       \
      return;                                \
    }                                        \
  } while (0)

// Data-parallel ranks on the CPU need c10d's Gloo, which the PyTorch wheel's LibTorch (the GPU
// machine's build) lacks; the Debian build has it, so CI runs these tests.
#define SKIP_WITHOUT_GLOO()                                                    \
  do {                                                                         \
    if (vitlab::data_parallel_backends().find("gloo") == std::string::npos) { \
      WARN("this build has no Gloo: CPU data-parallel training is not possible here"); \
      return;                                                                  \
    }                                                                          \
  } while (0)

// REQUIRE that `expr` throws an exception of `Type` whose message contains `substring`.
#define REQUIRE_THROWS_WITH_TYPE(expr, Type, substring) \
  REQUIRE_THROWS_MATCHES(expr, Type, vitlab::test::MessageContains(substring))
