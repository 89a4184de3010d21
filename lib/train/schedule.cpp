#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace vitlab {

LrScheduleFn::LrScheduleFn(const TrainConfig& c, int64_t steps_per_epoch)
    : kind_(c.schedule),
      peak_(c.lr),
      floor_(c.min_lr),
      warmup_(static_cast<int64_t>(std::llround(c.warmup_epochs * steps_per_epoch))),
      total_(int64_t(c.epochs) * steps_per_epoch) {}

double LrScheduleFn::operator()(int64_t step) const {
  // Warmup reaches the peak on the last warmup step (step + 1 of warmup_), never lr = 0.
  if (step < warmup_) return peak_ * double(step + 1) / double(warmup_);
  if (kind_ == LrSchedule::kConstant) return peak_;
  const int64_t decay_steps = std::max<int64_t>(total_ - warmup_, 1);
  const double progress = std::clamp(double(step - warmup_) / double(decay_steps), 0.0, 1.0);
  const double factor = kind_ == LrSchedule::kCosine ? 0.5 * (1.0 + std::cos(M_PI * progress))
                                                     : 1.0 - progress;
  return floor_ + (peak_ - floor_) * factor;
}

}  // namespace vitlab
