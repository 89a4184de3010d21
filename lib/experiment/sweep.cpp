#include "experiment/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <set>
#include <sstream>

#include "config/run_config.h"
#include "core/atomic_file.h"
#include "core/interrupt.h"
#include "experiment/executor.h"
#include "experiment/manifest.h"
#include "experiment/plan.h"
#include "experiment/run_folder.h"
#include "experiment/summary.h"

namespace vitlab {
namespace fs = std::filesystem;

void check_output_folder(const std::string& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  // The nearest part of the path that exists must be a writable folder.
  fs::path existing = p;
  while (!existing.empty() && !fs::exists(existing, ec) && existing != existing.root_path())
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec))
    throw IoError(fmt::format("{}: cannot create the output folder: {} is not a folder", dir,
                              existing.string()));
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    throw IoError(fmt::format("{}: output folder is not writable ({} does not allow writing)", dir,
                              existing.string()));
}

namespace {

std::string plural(size_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// The base's resolved config, the reference the dry run lists each run against.
Json resolved_base(const SweepSpec& spec) {
  Json base = spec.base;
  base["seed"] = spec.seeds.front();
  if (base.contains("init_from") && base["init_from"].is_string() &&
      base["init_from"].get<std::string>().rfind("@", 0) == 0)
    base.erase("init_from");
  return read_run_config(base, spec.source).to_json();
}

// What the sweep will do with a run: from its folder's state.
std::string run_state(const PlannedRun& run) {
  std::vector<std::string> stages;
  for (const auto& s : run.stages) stages.push_back(s.name);
  const std::string status = read_run_outcome(run.dir, stages).status;
  if (status == "completed" || status == "diverged") return "done (" + status + ")";
  if (status == "failed") return "retry (failed before)";
  if (status == "interrupted") return "resume";
  return "new";
}

// Run folders holding a different config than the sweep plans for the same id.
void check_existing_configs(const SweepPlan& plan, const std::string& out_dir) {
  std::vector<std::string> conflicts;
  for (const auto& run : plan.runs) {
    for (const auto& stage : run.stages) {
      const Json stored = stored_config(stage.dir);
      if (stored.is_null()) continue;
      const std::string diff = first_config_difference(stored, stage.config);
      if (diff.empty()) continue;
      conflicts.push_back(fmt::format("run {}{}: {}", run.id, stage.name.empty() ? "" : " stage " + stage.name, diff));
      break;
    }
  }
  if (conflicts.empty()) return;
  std::string text = fmt::format("{}: {} already hold{} results of a different config under the same "
                                 "id (first difference shown); use --force to move them to {}/trash/ "
                                 "and rerun, or choose another --out:",
                                 out_dir, plural(conflicts.size(), "run folder"),
                                 conflicts.size() == 1 ? "s" : "", out_dir);
  for (const auto& c : conflicts) text += "\n  " + c;
  throw UserError(text);
}

void print_dry_run(const SweepSpec& spec, const SweepPlan& plan, const std::string& out_dir, std::FILE* out) {
  const Json base = resolved_base(spec);
  std::fprintf(out, "%s\n", fmt::format("sweep {} ({}): {} = {} x {}{}, output {}", spec.name, spec.source,
                                        plural(plan.runs.size(), "run"), plural(plan.variants.size(), "variant"),
                                        plural(spec.seeds.size(), "seed"),
                                        spec.stages.empty() ? "" : fmt::format(", {} stages each", spec.stages.size()),
                                        out_dir).c_str());
  std::fprintf(out, "dry run: nothing is written.\nbase config (resolved): %s\n", base.dump().c_str());
  for (const auto& run : plan.runs) {
    const Variant& v = plan.variants[run.variant];
    std::fprintf(out, "%s\n", fmt::format("{}  [{}; {}{}]", run.id, run_state(run), v.kind,
                                          v.compare_to.empty() ? ", reference" : ", vs " + v.compare_to).c_str());
    for (const auto& stage : run.stages) {
      std::string diffs;
      for (const auto& d : config_differences(base, stage.config)) diffs += (diffs.empty() ? "" : " ") + d;
      std::fprintf(out, "    %s%s\n", stage.name.empty() ? "" : ("stage " + stage.name + ": ").c_str(),
                   diffs.empty() ? "(the base config)" : diffs.c_str());
    }
  }
}

// Held for the whole sweep; released by the kernel if the sweep dies. O_CLOEXEC: children
// (which may outlive nothing, but still) do not inherit it.
int lock_sweep_folder(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".sweep.lock").string();
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("{}: cannot create the lock file", path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw UserError(fmt::format("{}: another `vitlab sweep` is running in this folder; wait for it "
                                "or use another --out", dir));
  }
  return fd;
}

}  // namespace

std::string sweep_output_dir(const SweepOptions& options) {
  return options.out_dir.empty() ? "runs/" + fs::path(options.file).stem().string() : options.out_dir;
}

namespace {

// The GPUs runs are placed on, one slot after another: --devices, else each GPU when there are
// several, else none (every run uses its config's device).
std::vector<std::string> placement_devices(const std::string& list, int gpus) {
  std::vector<std::string> devices;
  if (list.empty()) {
    for (int k = 0; gpus > 1 && k < gpus; ++k) devices.push_back(fmt::format("cuda:{}", k));
    return devices;
  }
  std::stringstream parts(list);
  for (std::string d; std::getline(parts, d, ',');) {
    const DeviceChoice choice = parse_device(d, "--devices");
    if (!choice.cuda || d.rfind("cuda", 0) != 0)
      throw UserError(fmt::format("--devices: \"{}\" is not a GPU; name them as cuda:N (e.g. cuda:0,cuda:1)", d));
    if (choice.index >= gpus)
      throw UserError(fmt::format("--devices: {} does not exist: {} GPU(s) here, and the sweep's runs {}", d,
                                  int(torch::cuda::device_count()), gpus > 0 ? "use them" : "ask for none"));
    devices.push_back(choice.str());
  }
  return devices;
}

}  // namespace

int run_sweep(const SweepOptions& options, std::FILE* out) {
  const SweepSpec spec = read_sweep_file(options.file);
  const std::string out_dir = sweep_output_dir(options);
  check_output_folder(out_dir);
  const SweepPlan plan = plan_sweep(spec, out_dir);
  if (!options.force) check_existing_configs(plan, out_dir);
  if (options.dry_run) {
    print_dry_run(spec, plan, out_dir, out);
    return 0;
  }
  if (options.jobs < 0) throw UserError("--jobs: must be at least 1");

  // Devices: a CUDA sweep on a machine without CUDA stops here, not in every run.
  std::set<std::string> devices;
  for (const auto& run : plan.runs)
    for (const auto& s : run.stages) devices.insert(s.config.value("device", std::string("auto")));
  bool uses_cuda = false;
  for (const auto& d : devices) uses_cuda = parse_device(d, spec.source + ": device").cuda || uses_cuda;
  const int gpus = uses_cuda ? int(torch::cuda::device_count()) : 0;

  ExecutorOptions exec;
  exec.devices = placement_devices(options.devices, gpus);
  exec.jobs = options.jobs > 0 ? options.jobs : std::max<int>(1, int(exec.devices.size()));
  exec.threads_per_job = exec.jobs > 1 ? std::max(1, usable_cpus() / exec.jobs) : 0;
  exec.program = options.program.empty() ? self_executable() : options.program;
  exec.live = ::isatty(::fileno(out)) != 0;
  exec.stamp = timestamp_now();

  ensure_writable_dir(out_dir);
  const int lock_fd = lock_sweep_folder(out_dir);
  if (options.force) {
    size_t moved = 0;
    for (const auto& run : plan.runs) {
      if (!fs::exists(run.dir)) continue;
      move_to_trash(run.dir, (fs::path(out_dir) / "trash").string(), run.id, exec.stamp);
      ++moved;
    }
    if (moved)
      std::fprintf(out, "--force: moved %zu existing run folder(s) to %s/trash/\n", moved, out_dir.c_str());
  }
  const Json manifest = make_manifest(spec, plan);
  write_json_file_atomic(manifest_path(out_dir), manifest);

  std::vector<size_t> todo;
  size_t finished = 0, resumed = 0;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const std::string state = run_state(plan.runs[i]);
    if (state.rfind("done", 0) == 0) {
      ++finished;
      continue;
    }
    if (state != "new") ++resumed;
    todo.push_back(i);
  }
  exec.already_finished = finished;
  std::fprintf(out, "%s\n", fmt::format("sweep {}: {} ({} x {}) in {}; {} finished, {} to resume or "
                                        "retry, {} new; {} at a time{}",
                                        spec.name, plural(plan.runs.size(), "run"),
                                        plural(plan.variants.size(), "variant"), plural(spec.seeds.size(), "seed"),
                                        out_dir, finished, resumed, todo.size() - resumed,
                                        plural(exec.jobs, "run"),
                                        exec.threads_per_job ? fmt::format(", {} CPU thread(s) each", exec.threads_per_job) : "")
                                .c_str());
  std::fflush(out);
  execute_runs(plan, todo, exec, out);

  const Json summary = build_summary(manifest, out_dir);
  write_summary_files(summary, out_dir);
  ::close(lock_fd);
  std::fprintf(out, "\n%s\nsummary: %s/summary.md (and .json, .csv)\n", summary_table(summary).c_str(),
               out_dir.c_str());
  if (stop_signal()) {
    std::fprintf(out, "sweep stopped by %s: rerun the same command to resume its runs\n",
                 stop_signal() == SIGINT ? "SIGINT" : "SIGTERM");
    return stopped_exit_status(stop_signal());
  }
  const Json& counts = summary["runs"];
  return counts["completed"] == counts["planned"] ? 0 : 1;
}

int summarize_sweep(const std::string& sweep_dir, std::FILE* out) {
  const Json manifest = read_manifest(sweep_dir);
  const Json summary = build_summary(manifest, sweep_dir);
  write_summary_files(summary, sweep_dir);
  std::fprintf(out, "%s\n", summary_table(summary).c_str());
  std::set<std::string> ids;
  for (const auto& r : manifest["runs"]) ids.insert(r["id"].get<std::string>());
  std::vector<std::string> others;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(sweep_dir) / "runs", ec))
    if (entry.is_directory() && !ids.count(entry.path().filename().string()))
      others.push_back(entry.path().filename().string());
  std::sort(others.begin(), others.end());
  if (!others.empty())
    std::fprintf(out, "note: %zu run folder(s) in %s/runs are not in this sweep's manifest (from an "
                      "earlier version of the sweep file?), e.g. %s\n",
                 others.size(), sweep_dir.c_str(), others.front().c_str());
  std::fprintf(out, "summary: %s/summary.md (and .json, .csv)\n", sweep_dir.c_str());
  return 0;
}

void publish_sweep(const std::string& sweep_dir, const std::string& dest, std::FILE* out) {
  const Json manifest = read_manifest(sweep_dir);
  std::vector<std::string> unfinished;
  for (const auto& run : manifest["runs"]) {
    const std::string id = run["id"].get<std::string>();
    const std::string status =
        read_run_outcome((fs::path(sweep_dir) / "runs" / id).string(), run_stage_names(manifest, run)).status;
    if (status == "interrupted" || status == "pending") unfinished.push_back(id + " (" + status + ")");
  }
  if (!unfinished.empty())
    throw UserError(fmt::format("{}: {} not finished, e.g. {}; rerun `vitlab sweep` to finish them "
                                "before publishing", sweep_dir, plural(unfinished.size(), "run"),
                                unfinished.front()));
  std::error_code ec;
  if (fs::exists(dest, ec) && !(fs::is_directory(dest, ec) && fs::is_empty(dest, ec)))
    throw UserError(fmt::format("{}: already exists and is not an empty folder; publishing never "
                                "overwrites results (remove it first, e.g. git rm -r, or choose "
                                "another folder)", dest));
  check_output_folder(dest);

  // Written next to `dest`, then renamed into place (same file system).
  fs::path target = fs::absolute(dest).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "DEST/"
  const fs::path staging = target.parent_path() / (".publishing-" + target.filename().string());
  fs::remove_all(staging, ec);
  ensure_writable_dir(staging.string());
  write_file_atomic((staging / "sweep.json").string(), read_file(manifest_path(sweep_dir)));
  write_summary_files(build_summary(manifest, sweep_dir), staging.string());
  size_t files = 0;
  for (const auto& run : manifest["runs"]) {
    const fs::path run_dir = fs::path("runs") / run["id"].get<std::string>();
    const std::vector<std::string> stages = run_stage_names(manifest, run);
    for (const auto& stage : stages.empty() ? std::vector<std::string>{""} : stages) {
      const fs::path dir = stage.empty() ? run_dir : run_dir / stage;
      for (const char* name : {"result.json", "metrics.jsonl"}) {
        const fs::path from = fs::path(sweep_dir) / dir / name;
        if (!fs::is_regular_file(from, ec)) continue;
        ensure_writable_dir((staging / dir).string());
        write_file_atomic((staging / dir / name).string(), read_file(from.string()));
        ++files;
      }
    }
  }
  // The report (report.html embeds everything) and the analysis it was made from, so `vitlab
  // report` on the published folder redraws it without the checkpoints.
  if (fs::is_regular_file(fs::path(sweep_dir) / "report.html", ec)) {
    write_file_atomic((staging / "report.html").string(), read_file((fs::path(sweep_dir) / "report.html").string()));
    ++files;
  }
  const fs::path analysis = fs::path(sweep_dir) / "analysis";
  if (fs::is_directory(analysis, ec))
    for (const auto& entry : fs::recursive_directory_iterator(analysis, ec)) {
      if (!entry.is_regular_file()) continue;
      const fs::path rel = fs::relative(entry.path(), sweep_dir);
      ensure_writable_dir((staging / rel).parent_path().string());
      write_file_atomic((staging / rel).string(), read_file(entry.path().string()));
      ++files;
    }
  if (fs::exists(target, ec)) fs::remove(target, ec);  // the empty folder checked above
  fs::create_directories(target.parent_path(), ec);
  fs::rename(staging, target, ec);
  if (ec)
    throw IoError(fmt::format("{}: cannot move the published files into place from {}: {}", dest,
                              staging.string(), ec.message()));
  std::fprintf(out, "%s\n", fmt::format("published {} to {}: sweep.json, summary.{{md,json,csv}} and "
                                        "{} (each run's result.json and metrics.jsonl; report.html and "
                                        "analysis/ where present)",
                                        plural(manifest["runs"].size(), "run"), dest,
                                        plural(files, "file")).c_str());
}

}  // namespace vitlab
