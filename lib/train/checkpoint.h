// Training checkpoints: model weights, optimiser state, position in the run, the resolved config
// and a format version, in LibTorch's native archive. Written atomically.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/json_reader.h"
#include "models/module_state.h"

namespace vitlab {

// Bump when the layout changes; loading another version fails with a hint. Version 2 is a run
// stopped inside an epoch (epoch_position): a reader of version 1 would restart that epoch with
// its steps already counted, so it must refuse the file. Checkpoints at epoch boundaries stay 1.
constexpr int64_t kCheckpointFormatVersion = 1;
constexpr int64_t kCheckpointInsideEpochVersion = 2;

struct Checkpoint {
  Json config;               // the run's resolved config (RunConfig::to_json)
  NamedTensors model;        // parameters and buffers, by module path
  NamedTensors optimizer;    // Optimizer::state()
  int64_t epochs_done = 0;   // completed epochs
  int64_t steps_done = 0;    // optimiser steps taken
  double best_val_accuracy = -1.0;
  int64_t best_epoch = -1;
  double train_seconds = 0;  // training time so far (resume adds to it)
  int64_t world_size = 1;    // processes that trained it (data-parallel); resume needs as many
  Json history = Json::array();  // metrics records so far (to rebuild metrics.jsonl)
  // A run stopped inside an epoch (Ctrl-C, SIGTERM) continues that epoch exactly: where it
  // stopped and what the epoch had summed (train_run.h: EpochProgress), and the random
  // generators' states, as "rank<r>.cpu" and "rank<r>.cuda". Null and empty at an epoch boundary.
  Json epoch_position;
  NamedTensors rng;
};

// Writes atomically (temporary file + rename). IoError naming the path on failure.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// A copy whose tensors are host copies (a live state refers to the model's own tensors).
Checkpoint host_copy(const Checkpoint& state);

// Reads and checks the format version. IoError naming the path for a missing, corrupt or
// foreign file, and for another format version (with what to do).
Checkpoint load_checkpoint(const std::string& path);

}  // namespace vitlab
