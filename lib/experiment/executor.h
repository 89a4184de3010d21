// Runs a sweep's runs as child processes (`vitlab train --resume <stage folder>`), up to `jobs`
// at a time, stage after stage, with a live status line and an ETA.
//
// Why processes: a run that crashes, is killed for memory or leaks threads cannot take the sweep
// (or the other runs) with it, and each run gets its own thread count and GPU. The children are
// started with fork + PR_SET_PDEATHSIG + execve rather than posix_spawn so that they die with the
// sweep: a killed sweep must not leave orphans writing into folders that the rerun resumes.
//
// With N > 1 jobs each child gets max(1, cores / N) CPU threads through OMP_NUM_THREADS (unless
// the environment sets it). Like the device, the thread count is not part of a run's config or
// id: changing --jobs never invalidates finished runs. Results are deterministic for a given N;
// across thread counts CPU reductions may differ in the last bits.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "experiment/plan.h"

namespace vitlab {

struct ExecutorOptions {
  int jobs = 1;
  std::string program;      // the vitlab binary
  // Not empty: slot k runs on devices[k % size] (configs asking for cuda or auto).
  std::vector<std::string> devices;
  int threads_per_job = 0;  // > 0: OMP_NUM_THREADS / MKL_NUM_THREADS of each child (if unset)
  bool live = false;        // rewrite one status line in place (a terminal)
  size_t already_finished = 0;  // runs skipped because their results are final, for the counts
  std::string stamp;        // names set-aside results of failed attempts
};

struct ExecutionCounts {
  int completed = 0;
  int diverged = 0;
  int failed = 0;
  int interrupted = 0;  // stopped by SIGINT/SIGTERM to the sweep: the next sweep resumes them
};

// Runs `todo` (indices into plan.runs) and reports each run as it finishes on `out`.
// A failure to start or a child that dies without a result.json is recorded as failed in the
// stage's result.json; the other runs go on. A stop asked of the sweep (core/interrupt.h) starts
// no more runs and passes SIGTERM to the running ones, which stop after their current step with
// a checkpoint; they are counted as interrupted, and rerunning the sweep resumes them.
ExecutionCounts execute_runs(const SweepPlan& plan, const std::vector<size_t>& todo,
                             const ExecutorOptions& options, std::FILE* out);

// The number of CPUs this process may use (affinity mask), at least 1.
int usable_cpus();

// This program's own path (/proc/self/exe).
std::string self_executable();

}  // namespace vitlab
