// A procedural, seeded data set for tests and benchmarks: every class has its own pattern (a
// stripe orientation/period and a blob position/colour), so a tiny model learns it in a few epochs.
#pragma once
#include <cstdint>

#include "data/dataset.h"

namespace vitlab {

struct SyntheticSpec {
  int num_classes = 10;
  int64_t train_size = 1000;
  int64_t test_size = 200;
  int image_size = 28;
  int channels = 1;
  uint64_t seed = 0;  // the same seed gives the same images on every machine
};

// Balanced labels (each class size/num_classes times, +1 for the first size % num_classes),
// shuffled; per image a random stripe phase, blob jitter and uniform pixel noise.
DatasetSplits make_synthetic(const SyntheticSpec& spec);

}  // namespace vitlab
