// Notices a data-parallel rank that died. On GPUs a collective whose peer is gone never ends: the
// NCCL kernel waits, and so does the host at its next synchronisation, and collectives inside a
// captured CUDA graph are not watched by NCCL's own watchdog. So every rank beats a counter in
// the rendezvous store from a thread of its own, and watches the others' counters: one that stays
// still for `timeout` (or a store that stays unreachable that long: rank 0 serves it) means a
// rank stopped, and `on_lost` runs (by default: say which rank, and exit with status 1; the last
// checkpoint is intact and --resume on every rank continues the run).
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "train/data_parallel.h"

namespace vitlab {

class RankMonitor {
 public:
  using LostFn = std::function<void(const std::string& message)>;
  // Connects its own store client (a thread blocked in the store must not hold up the beats).
  // UserError when the store cannot be reached.
  RankMonitor(const DistEnv& env, std::chrono::milliseconds timeout, LostFn on_lost = {});
  ~RankMonitor();  // stops beating and watching
  RankMonitor(const RankMonitor&) = delete;
  RankMonitor& operator=(const RankMonitor&) = delete;

  // This rank is done with the others (its run ended, whatever the outcome): they stop waiting
  // for its beats, so a rank still writing its files is not told that this one was lost.
  void mark_done();

  // The beat interval for a timeout: often enough that a lost rank is seen within about 1.2x the
  // timeout, rarely enough to cost nothing (a store round trip takes ~0.2 ms to 0.2 s).
  static std::chrono::milliseconds period_for(std::chrono::milliseconds timeout);

 private:
  void run();
  // One round: beat, read the others' beats; whether to stop (a rank was reported lost).
  bool beat_and_judge();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;  // guards stop_ only: store calls run without it
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vitlab
