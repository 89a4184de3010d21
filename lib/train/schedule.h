// Learning-rate schedule: linear warmup from 0 to the peak, then cosine or linear decay to
// min_lr (or constant). A pure function of the step, so resumed runs continue exactly.
#pragma once
#include <cstdint>

#include "config/train_config.h"

namespace vitlab {

class LrScheduleFn {
 public:
  LrScheduleFn(const TrainConfig& config, int64_t steps_per_epoch);
  double operator()(int64_t step) const;  // step counts from 0; the lr used for that update
  int64_t total_steps() const { return total_; }
  int64_t warmup_steps() const { return warmup_; }

 private:
  LrSchedule kind_;
  double peak_, floor_;
  int64_t warmup_, total_;
};

}  // namespace vitlab
