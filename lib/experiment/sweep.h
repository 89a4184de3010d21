// `vitlab sweep` and `vitlab summarize` as library calls: read and check the sweep file, check
// the output folder, then list (dry run) or run what is not finished yet, then summarize.
//
// A run's results are final when its result.json says completed or diverged (divergence is an
// outcome of the config); failed runs are retried, interrupted ones resume from their last
// checkpoint. --force moves existing run folders to DIR/trash/ first; nothing is ever deleted.
#pragma once
#include <cstdio>
#include <string>

namespace vitlab {

struct SweepOptions {
  std::string file;
  std::string out_dir;  // empty: runs/<sweep file's stem>
  int jobs = 0;         // 0: one, or one per GPU when there are several
  // The GPUs to place runs on ("cuda:0,cuda:1"); empty: every GPU when there are several.
  std::string devices;
  bool dry_run = false;
  bool force = false;
  std::string program;  // the vitlab binary that trains each run; empty: this program
};

// The sweep folder: --out, else runs/<sweep file's stem>.
std::string sweep_output_dir(const SweepOptions& options);

// Returns the exit status: 0 when every run completed, 1 when any failed or diverged.
// Problems with the input (sweep file, run configs, output folder) throw UserError first.
int run_sweep(const SweepOptions& options, std::FILE* out);

// Rebuilds DIR/summary.{json,csv,md} from DIR/sweep.json and the run folders; prints the table.
int summarize_sweep(const std::string& sweep_dir, std::FILE* out);

// Copies a finished sweep's results from `sweep_dir` to `dest` (for experiments/results/<sweep>/):
// sweep.json, summary.{json,csv,md} and each run's result.json and metrics.jsonl (per stage);
// report.html and analysis/ where present; no checkpoints, logs or config copies (result.json
// holds the resolved config). `dest` is then a
// sweep folder itself: `vitlab summarize dest` rebuilds the same summary. UserError when a run is
// unfinished (interrupted or not started) or `dest` exists and is not an empty folder; `dest`
// appears complete or not at all.
void publish_sweep(const std::string& sweep_dir, const std::string& dest, std::FILE* out);

// UserError when `dir` cannot be created or written, checked without creating anything.
void check_output_folder(const std::string& dir);

}  // namespace vitlab
