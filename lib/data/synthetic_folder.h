// An ImageNet-shaped folder of synthetic JPEGs, for measuring the streaming pipeline without the
// real data (the generator is committed, not the images): <out>/train/class_NNN/*.jpg and
// <out>/val/class_NNN/*.jpg, each image a class colour, a wave of class-dependent frequency and
// noise, about width x height pixels, at JPEG quality `quality`. Needs TurboJPEG.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace vitlab {

struct SyntheticFolderOptions {
  int64_t images = 20000;  // train + val
  int classes = 100;
  double val_fraction = 0.1;  // of each class's images
  int quality = 90;
  int64_t width = 500, height = 375;  // ImageNet's typical size; each image varies by +-20%
  uint64_t seed = 0;
  int threads = 0;  // 0: the machine's cores
};

struct SyntheticFolderSummary {
  int64_t train = 0, val = 0;
  uint64_t bytes = 0;
};

// Throws IoError naming `out` when it exists and is not an empty folder, or a file that cannot
// be written; DataError without TurboJPEG. `progress(images written)` every 1,000 images.
SyntheticFolderSummary write_synthetic_folder(const std::string& out,
                                              const SyntheticFolderOptions& options,
                                              const std::function<void(int64_t)>& progress = {});

}  // namespace vitlab
