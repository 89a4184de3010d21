#include "test_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <stb/stb_image_write.h>

#include "models/factory.h"
#include "models/module_state.h"
#include "train/objective.h"

extern char** environ;

namespace vitlab::test {

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

pid_t spawn_vitlab(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv_s = {VITLAB_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;  // keep the test's output clean
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.empty() ? "/dev/null" : log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!log.empty()) posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, VITLAB_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

int wait_exit_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

bool wait_for_file(const std::string& path, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

double seconds_after_file(const std::vector<std::string>& args, const std::string& file,
                          const std::string& log) {
  const pid_t pid = spawn_vitlab(args, log);
  REQUIRE(wait_for_file(file, 120));
  const auto start = std::chrono::steady_clock::now();
  const int status = wait_exit_status(pid);
  INFO((log.empty() ? std::string() : read_text(log)));
  REQUIRE(status == 0);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool kill_and_wait(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

void write_png_split(const std::string& root, const std::string& split, int per_class) {
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < per_class; ++i) {
      const auto file = std::filesystem::path(root) / split / (k ? "b" : "a") /
                        ("img" + std::to_string(i) + ".png");
      std::filesystem::create_directories(file.parent_path());
      std::vector<uint8_t> px;
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x)
          for (int c = 0; c < 3; ++c)
            px.push_back(static_cast<uint8_t>((k ? 160 : 40) + 7 * i + 3 * c + x * (k ? 1 : 2) + y));
      REQUIRE(stbi_write_png(file.string().c_str(), 8, 8, 3, px.data(), 8 * 3) != 0);
    }
}

Json tiny_folder_model() {
  return Json{{"name", "vit_tiny_p4_28"}, {"width", 16}, {"heads", 2},
              {"depth", 1}, {"mlp_dim", 32}, {"patch_size", 4},
              {"image_size", 8}, {"in_channels", 3}, {"num_classes", 2}};
}

Json tiny_base(int epochs) {
  return Json{{"device", "cpu"},
              {"model", {{"name", "vit_tiny_p4_28"}, {"width", 16}, {"heads", 2}, {"depth", 1},
                         {"mlp_dim", 32}, {"patch_size", 7}}},
              {"data", {{"dataset", "synthetic"}, {"synthetic_train", 256}, {"synthetic_test", 64}}},
              {"train", {{"epochs", epochs}, {"batch_size", 32}, {"lr", 0.003}}}};
}

Json tiny_sweep(int epochs) {
  return Json{{"description", "tiny test sweep"},
              {"claim", "a test claim (Table 0)"},
              {"command", "vitlab sweep s.json"},
              {"expected", {{"metric", "test_accuracy_pct"}, {"values", Json::object()},
                            {"tolerance", 1.0}, {"measured_on", "not yet measured"}}},
              {"base", tiny_base(epochs)},
              {"grid", {{"model.pos_embed", {"none", "learned_1d"}}}},
              {"seeds", {0, 1}},
              {"baselines", {{"deeper", {{"model.depth", 2}}}}}};
}

void expect_same_weights(const std::string& a, const std::string& b) {
  const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
  REQUIRE(ca.model.size() == cb.model.size());
  for (size_t i = 0; i < ca.model.size(); ++i) {
    INFO(ca.model[i].first);
    REQUIRE(torch::equal(ca.model[i].second, cb.model[i].second));
  }
  REQUIRE(ca.optimizer.size() == cb.optimizer.size());
  for (size_t i = 0; i < ca.optimizer.size(); ++i)
    REQUIRE(torch::equal(ca.optimizer[i].second, cb.optimizer[i].second));
  CHECK(ca.steps_done == cb.steps_done);
}

Checkpoint save_run_checkpoint(const RunConfig& run, const std::string& path, uint64_t seed) {
  torch::manual_seed(seed);
  const ImageClassifier model = build_run_model(run);
  Checkpoint c;
  c.config = run.to_json();
  c.model = module_state(*model);
  save_checkpoint(path, c);
  return c;
}

ImageClassifier random_model(const ModelConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  ImageClassifier m = build_model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.copy_(torch::randn_like(p) * 0.3 + (p.dim() == 1 ? 0.5 : 0.0));
  m->eval();
  return m;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_vitlab(const std::string& args, const std::string& environment) {
  return run_command((environment.empty() ? "" : "env " + environment + " ") + VITLAB_BINARY + " " + args);
}

CommandResult run_command(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace vitlab::test
