// `vitlab bench`: training or inference throughput on synthetic data, timed in windows that are
// synchronised with the device; median img/s, peak memory, achieved TFLOP/s and MFU.
#pragma once
#include <string>

#include "config/run_config.h"

namespace vitlab {

struct BenchOptions {
  ModelConfig model;
  TrainConfig train;  // optimiser, precision, fast_path, batch_size
  std::string device = "auto";
  bool train_mode = true;   // false: inference (forward only, no grad)
  bool fused_kernels = true;  // the fast path's hand-written kernels (off: to measure their share)
  int warmup_steps = 10;
  int steps = 20;            // steps per timed window
  int windows = 5;
  double peak_tflops = 0;    // for MFU; 0 = by device (H100/H200 bf16 dense 989.4, fp32 66.9)
  std::string profile_trace;  // non-empty: profile `steps` more steps, Chrome trace to this file
};

// Runs the benchmark and returns its record (also what --json writes).
Json run_benchmark(const BenchOptions& options);

}  // namespace vitlab
