#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "core/duration.h"

namespace vitlab {

Progress::Progress(int epochs, int64_t steps_per_epoch, int log_every, bool quiet)
    : epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      log_every_(log_every),
      quiet_(quiet),
      live_(!quiet && ::isatty(STDERR_FILENO)) {}

void Progress::step(int epoch, int64_t step_in_epoch, double loss, double lr, double ips, double eta,
                    const std::string& extra) {
  if (quiet_) return;
  const std::string line =
      fmt::format("epoch {}/{} step {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s ETA {}{}", epoch + 1,
                  epochs_, step_in_epoch + 1, steps_per_epoch_, loss, lr, ips, format_duration(eta), extra);
  if (live_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print_ < std::chrono::milliseconds(250) && step_in_epoch + 1 < steps_per_epoch_) return;
    last_print_ = now;
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
  } else if (log_every_ > 0 && (step_in_epoch + 1) % log_every_ == 0) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void Progress::epoch_done(const std::string& line) {
  if (quiet_) return;
  std::fprintf(stderr, live_ ? "\r\033[K%s\n" : "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::message(const std::string& line) {
  if (quiet_) return;
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace vitlab
