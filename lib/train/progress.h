// Progress output: on a terminal one live line per epoch (rewritten in place) with step, loss,
// learning rate, img/s and ETA; otherwise plain lines, one per epoch (and every log_every steps).
#pragma once
#include <chrono>
#include <string>

namespace vitlab {

class Progress {
 public:
  Progress(int epochs, int64_t steps_per_epoch, int log_every, bool quiet);
  // Inside an epoch; prints when live (throttled to ~4/s) or on log_every boundaries.
  // `extra` is appended (a streamed folder's decoding speed and queue).
  void step(int epoch, int64_t step_in_epoch, double loss, double lr, double images_per_second,
            double eta_seconds, const std::string& extra = "");
  // At the end of an epoch: the finished line.
  void epoch_done(const std::string& line);
  void message(const std::string& line);
  bool live() const { return live_; }

 private:
  int epochs_;
  int64_t steps_per_epoch_;
  int log_every_;
  bool quiet_, live_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace vitlab
