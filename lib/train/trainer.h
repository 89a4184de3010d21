// One training run: data, model, optimiser, schedule, evaluation, checkpoints and results.
//
// A run folder holds:
//   config.json      the resolved config (written before training starts)
//   metrics.jsonl    one JSON record per completed epoch
//   checkpoints/     last.pt (every epoch) and best.pt (best validation accuracy)
//   result.json      written once at the end: status completed | diverged | failed
#pragma once
#include <chrono>
#include <string>

#include "config/run_config.h"
#include "train/data_parallel.h"

namespace vitlab {

struct TrainOptions {
  std::string out_dir;
  bool resume = false;  // continue from out_dir/checkpoints/last.pt (must hold the same config)
  std::string device;   // overrides the config's device when not empty
  bool quiet = false;   // no progress output
  std::string source;   // the config's file name, for error messages
  // Data-parallel (train/data_parallel.h): this process's rank in torchrun's group, and how long
  // any rank waits for the others before the run fails (a rank that died, a master not there).
  DistEnv dist;
  std::chrono::milliseconds dist_timeout{std::chrono::minutes(5)};
};

// Trains the run and returns result.json's content. Bad input (config, data, an output folder
// that is not writable or already holds another run) throws UserError before anything is
// written. A run that diverges or fails at run time returns status "diverged"/"failed" with the
// error; its folder keeps every completed epoch's checkpoint.
Json train_run(const RunConfig& config, const TrainOptions& options);

// Seeds derived per epoch, so a run resumed at an epoch boundary draws the same numbers.
uint64_t epoch_seed(int64_t run_seed, int64_t epoch, uint64_t stream);

}  // namespace vitlab
