#include "experiment/executor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <thread>

#include "core/atomic_file.h"
#include "core/duration.h"
#include "core/interrupt.h"
#include "experiment/run_folder.h"

extern char** environ;

namespace vitlab {
namespace fs = std::filesystem;

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

std::string self_executable() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("/proc/self/exe: cannot find this program's path to start runs");
  return p.string();
}

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// RANK=..., WORLD_SIZE=..., MASTER_ADDR=..., TORCHELASTIC_... (train/data_parallel.h).
bool is_rendezvous_variable(const std::string& entry) {
  const std::string name = entry.substr(0, entry.find('='));
  for (const char* v : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"})
    if (name == v) return true;
  return name.rfind("TORCHELASTIC_", 0) == 0;
}

// argv/envp prepared before fork: the child may only make async-signal-safe calls.
struct ChildCommand {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  void seal() {
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

pid_t start_child(ChildCommand& cmd, const std::string& log_file) {
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw IoError(fmt::format("{}: cannot open: {}", log_file, std::strerror(errno)));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  cmd.seal();
  // Until execve the child would run the sweep's stop handler, and a stop meant for the run would
  // be lost with it: stop signals wait (blocked) and the child takes the default handlers first.
  sigset_t stops, before;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &stops, &before);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGINT, &default_action, nullptr);
    ::sigaction(SIGTERM, &default_action, nullptr);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the sweep died before prctl took effect
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(cmd.argv[0], cmd.argv.data(), cmd.envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &before, nullptr);
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) throw IoError(fmt::format("cannot start a run: fork failed: {}", std::strerror(fork_errno)));
  return pid;
}

std::string exit_description(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({}){}", sig, strsignal(sig),
                       sig == SIGKILL ? "; out of memory?" : "");
  }
  return fmt::format("exited with status {} without writing result.json", WEXITSTATUS(status));
}

struct Active {
  pid_t pid;
  size_t run, stage;
  int slot;
};

class Executor {
 public:
  Executor(const SweepPlan& plan, const std::vector<size_t>& todo, const ExecutorOptions& o, std::FILE* out)
      : plan_(plan), opt_(o), out_(out), queue_(todo.begin(), todo.end()),
        next_stage_(plan.runs.size(), 0), run_start_(plan.runs.size()) {
    total_ = o.already_finished + todo.size();
    done_ = o.already_finished;
    if (!plan.runs.empty())
      for (const auto& s : plan.runs[0].stages)
        if (!s.name.empty()) stage_names_.push_back(s.name);
  }

  ExecutionCounts run() {
    std::vector<bool> slot_busy(std::max(1, opt_.jobs), false);
    auto last_draw = Clock::now() - std::chrono::seconds(10);
    while (!queue_.empty() || !active_.empty()) {
      if (!stopping_ && stop_signal()) stop_runs();
      for (size_t slot = 0; slot < slot_busy.size() && !queue_.empty(); ++slot) {
        if (slot_busy[slot]) continue;
        const size_t r = queue_.front();
        queue_.pop_front();
        if (start(r, int(slot))) slot_busy[slot] = true;
      }
      bool reaped = false;
      for (size_t i = 0; i < active_.size(); ++i) {
        int status = 0;
        const pid_t w = ::waitpid(active_[i].pid, &status, WNOHANG);
        if (w == 0 || (w < 0 && errno == EINTR)) continue;  // still running
        // w < 0 otherwise: the child is gone without a status (SIGCHLD ignored?); its folder
        // tells what happened.
        const Active a = active_[i];
        active_.erase(active_.begin() + long(i));
        slot_busy[size_t(a.slot)] = false;
        stage_ended(a, status);
        reaped = true;
        break;
      }
      if (reaped) continue;
      if (opt_.live && seconds_since(last_draw) > 0.5) {
        draw_live();
        last_draw = Clock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (opt_.live) std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    return counts_;
  }

 private:
  // Starts the run's next unfinished stage; false when the run needs no process (finished).
  bool start(size_t r, int slot) {
    const PlannedRun& run = plan_.runs[r];
    if (next_stage_[r] == 0) run_start_[r] = Clock::now();
    try {
      size_t s = next_stage_[r];
      for (; s < run.stages.size(); ++s) {
        const StageState state = stage_state(run.stages[s].dir);
        if (state == StageState::kCompleted) continue;
        if (state == StageState::kDiverged) break;
        if (state == StageState::kFailed) set_aside_failed_result(run.stages[s].dir, opt_.stamp);
        next_stage_[r] = s;
        spawn(r, s, slot);
        return true;
      }
    } catch (const std::exception& e) {
      failed_to_start(r, e.what());
    }
    finish(r);
    return false;
  }

  void spawn(size_t r, size_t s, int slot) {
    const PlannedStage& stage = plan_.runs[r].stages[s];
    ensure_writable_dir(stage.dir);
    // The resolved config goes first, so a run interrupted before training is still recognised.
    write_json_file_atomic((fs::path(stage.dir) / "config.json").string(), stage.config);
    ChildCommand cmd;
    cmd.args = {opt_.program, "train", "--resume", stage.dir};
    const std::string device = stage.config.value("device", std::string("auto"));
    if (!opt_.devices.empty() && (device == "cuda" || device == "auto")) {
      cmd.args.push_back("--device");
      cmd.args.push_back(opt_.devices[slot % opt_.devices.size()]);
    }
    // Each run is one process: torchrun's variables around the sweep would make it join a group.
    for (char** e = environ; *e; ++e)
      if (!is_rendezvous_variable(*e)) cmd.env.push_back(*e);
    if (opt_.threads_per_job > 0) {
      for (const char* var : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"})
        if (!std::getenv(var)) cmd.env.push_back(fmt::format("{}={}", var, opt_.threads_per_job));
    }
    const pid_t pid = start_child(cmd, (fs::path(stage.dir) / "train.log").string());
    active_.push_back({pid, r, s, slot});
  }

  // Asks every running run to stop after its current step (they write a checkpoint first) and
  // starts no more; the loop then waits for them.
  void stop_runs() {
    stopping_ = true;
    for (const auto& a : active_) ::kill(a.pid, SIGTERM);
    const std::string text = fmt::format("stopping: {} running run(s) asked to stop after their current step, "
                                         "{} not started; rerun the sweep to resume them",
                                         active_.size(), queue_.size());
    queue_.clear();
    if (opt_.live) std::fprintf(out_, "\r\033[K%s\n", text.c_str());
    else std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  }

  void stage_ended(const Active& a, int status) {
    const PlannedStage& stage = plan_.runs[a.run].stages[a.stage];
    StageState state = stage_state(stage.dir);
    // Stopped on request, even one killed by the signal before its handler was installed: its
    // folder resumes on the next sweep, so it is not recorded as failed.
    const bool stopped = state == StageState::kInterrupted ||
                         ((stopping_ || stop_signal()) && (state == StageState::kNew || state == StageState::kPartial));
    if (!stopped && (state == StageState::kNew || state == StageState::kPartial)) {
      std::string error = last_error_in_log((fs::path(stage.dir) / "train.log").string());
      if (error.empty() || WIFSIGNALED(status)) error = exit_description(status) + (error.empty() ? "" : ": " + error);
      try {
        record_stage_failure(stage.dir, error);
      } catch (const std::exception& e) {
        errors_[a.run] = error + " (and result.json could not be written: " + e.what() + ")";
      }
      state = StageState::kFailed;
    }
    if (state == StageState::kCompleted && a.stage + 1 < plan_.runs[a.run].stages.size() && !stopping_) {
      next_stage_[a.run] = a.stage + 1;
      queue_.push_front(a.run);  // the next stage now, while the checkpoint is fresh
      return;
    }
    finish(a.run);
  }

  void failed_to_start(size_t r, const std::string& error) { errors_[r] = error; }

  void finish(size_t r) {
    const PlannedRun& run = plan_.runs[r];
    RunOutcome o = read_run_outcome(run.dir, stage_names_);
    if (errors_.count(r)) {
      o.status = "failed";
      o.error = errors_[r];
    }
    const double wall = seconds_since(run_start_[r]);
    ++done_;
    std::string line;
    if (o.status == "completed") {
      ++counts_.completed;
      finished_seconds_.push_back(wall);
      line = fmt::format("completed, test accuracy {:.2f}%", 100.0 * o.result.value("test_accuracy", 0.0));
    } else if (o.status == "interrupted" || o.status == "pending") {
      ++counts_.interrupted;
      line = "interrupted: the next sweep resumes it";
    } else {
      ++(o.status == "diverged" ? counts_.diverged : counts_.failed);
      line = o.status + (o.error.empty() ? "" : ": " + o.error);
    }
    const std::string text = fmt::format("[{}/{}] {}: {} ({})", done_, total_, run.id, line,
                                         format_duration(wall));
    if (opt_.live) std::fprintf(out_, "\r\033[K%s\n", text.c_str());
    else std::fprintf(out_, "%s; %s\n", text.c_str(), status_text().c_str());
    std::fflush(out_);
  }

  std::string status_text() const {
    const size_t running = active_.size();
    std::string eta = "?";
    if (!finished_seconds_.empty()) {
      double mean = 0;
      for (double s : finished_seconds_) mean += s;
      mean /= double(finished_seconds_.size());
      double work = double(queue_.size()) * mean;
      for (const auto& a : active_)
        work += std::max(0.0, mean - seconds_since(run_start_[a.run]));
      eta = format_duration(work / std::max(1, opt_.jobs));
    } else if (queue_.empty() && active_.empty()) {
      eta = "0s";
    }
    return fmt::format("{}/{} done, {} running, {} failed, ETA {}", done_, total_, running,
                       counts_.failed + counts_.diverged, eta);
  }

  void draw_live() {
    std::string text = status_text();
    if (!active_.empty()) {
      const auto& a = active_.front();
      text += fmt::format(" | {}", plan_.runs[a.run].id);
      if (!plan_.runs[a.run].stages[a.stage].name.empty())
        text += " [" + plan_.runs[a.run].stages[a.stage].name + "]";
      if (active_.size() > 1) text += fmt::format(" +{}", active_.size() - 1);
    }
    if (text.size() > 110) text = text.substr(0, 107) + "...";
    std::fprintf(out_, "\r\033[K%s", text.c_str());
    std::fflush(out_);
  }

  const SweepPlan& plan_;
  const ExecutorOptions& opt_;
  std::FILE* out_;
  std::deque<size_t> queue_;
  std::vector<size_t> next_stage_;
  std::vector<Clock::time_point> run_start_;
  std::vector<std::string> stage_names_;
  std::vector<Active> active_;
  std::map<size_t, std::string> errors_;
  std::vector<double> finished_seconds_;
  ExecutionCounts counts_;
  size_t total_ = 0, done_ = 0;
  bool stopping_ = false;
};
}  // namespace

ExecutionCounts execute_runs(const SweepPlan& plan, const std::vector<size_t>& todo,
                             const ExecutorOptions& options, std::FILE* out) {
  return Executor(plan, todo, options, out).run();
}

}  // namespace vitlab
