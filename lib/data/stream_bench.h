// The streaming pipeline's own speed, without a model: list a folder's split, then decode and
// augment `batches` batches as training would, on the CPU. What a GPU run could be fed with.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "data/stream_loader.h"

namespace vitlab {

struct StreamBenchOptions {
  StreamOptions stream;  // image size, crops, threads, queue, bad-image policy
  std::string split = "train";
  int64_t batch_size = 256;
  int64_t batches = 20;  // timed; capped at the split's whole batches
  uint64_t seed = 0;
  std::string device = "cpu";  // where the batches go ("cuda" with stream.nvjpeg)
};

struct StreamBenchResult {
  int64_t files = 0;
  double list_seconds = 0;
  int64_t images = 0;
  double seconds = 0;  // from the stream's start to the last batch taken
  double images_per_second = 0;
  double first_batch_seconds = 0;  // from the stream's start to its first batch: each epoch's wait
  double mean_queued = 0;  // batches waiting when the consumer asked (0: the consumer waited)
  int threads = 0;
  int64_t bad_images = 0;
  int64_t peak_rss_mb = 0;  // the process's high-water mark (Linux), 0 where unknown
  std::string jpeg_decoder;  // "turbojpeg", "stb_image", or "nvjpeg <backend>"
};

// `warn` receives each bad image's message and the listing's progress lines.
StreamBenchResult bench_stream(const std::string& folder, const StreamBenchOptions& options,
                               const std::function<void(const std::string&)>& warn);

}  // namespace vitlab
