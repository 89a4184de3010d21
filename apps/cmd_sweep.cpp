// vitlab sweep: an ablation sweep from a JSON file (grid x seeds, compared with baselines).
#include "apps/cli.h"

#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "experiment/sweep.h"
#include "report/report.h"

namespace vitlab::app {

int cmd_sweep(int argc, char** argv) {
  cxxopts::Options options(
      "vitlab sweep",
      "Run an ablation sweep: every grid point, baseline and variant of SWEEP.json once per seed, "
      "each in DIR/runs/<id>/ (config.json, metrics.jsonl, result.json, checkpoints/, train.log),\n"
      "then DIR/summary.{json,csv,md} and DIR/report.html (vitlab report). Rerunning skips finished runs (completed or diverged), "
      "retries failed ones and resumes interrupted ones.\nThe sweep file format is described in "
      "lib/experiment/sweep_spec.h; examples are in experiments/.\nExit status: 0 all runs "
      "completed, 1 some failed or diverged, 2 bad input (nothing run), 130/143 stopped by "
      "SIGINT/SIGTERM (running runs stop after their current step; rerunning resumes them).");
  options.add_options()("file", "sweep JSON file", cxxopts::value<std::string>())(
      "out", "sweep folder (default runs/<sweep file name>)", cxxopts::value<std::string>())(
      "jobs", "runs at once, each a separate process; CPU threads are split between them "
              "(default 1, or one per GPU when there are several)",
      cxxopts::value<int>())(
      "devices", "the GPUs to place runs on, one after another: cuda:0,cuda:1 (default every GPU)",
      cxxopts::value<std::string>())("dry-run", "list the runs, their ids and configs; write nothing")(
      "force", "rerun everything; existing run folders are moved to DIR/trash/ first")(
      "h,help", "show this help");
  options.parse_positional({"file"});
  options.positional_help("SWEEP.json");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("file")) throw UserError("missing SWEEP.json (see --help)");
  SweepOptions sweep;
  sweep.file = args["file"].as<std::string>();
  if (args.count("out")) sweep.out_dir = args["out"].as<std::string>();
  if (args.count("jobs")) {
    sweep.jobs = args["jobs"].as<int>();
    if (sweep.jobs < 1) throw UserError(fmt::format("--jobs: must be at least 1, got {}", sweep.jobs));
  }
  if (args.count("devices")) sweep.devices = args["devices"].as<std::string>();
  sweep.dry_run = args.count("dry-run") > 0;
  sweep.force = args.count("force") > 0;
  std::cout.flush();
  if (!sweep.dry_run) install_stop_handlers("stopping the running runs after their current step");
  const int status = run_sweep(sweep, stdout);
  if (sweep.dry_run || stop_signal()) return status;
  // The report comes last, so its path is the last line a sweep (and `make run`) prints. A report
  // that cannot be made does not change the sweep's outcome: its results are already on disk.
  ReportOptions report;
  report.sweep_dir = sweep_output_dir(sweep);
  try {
    std::printf("report: %s\n", write_sweep_report(report, stdout).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: no report: %s (retry with `vitlab report %s`)\n", e.what(),
                 report.sweep_dir.c_str());
  }
  return status;
}

}  // namespace vitlab::app
