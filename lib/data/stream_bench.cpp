#include "data/stream_bench.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <numeric>

#include "data/batcher.h"

namespace vitlab {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// VmHWM of /proc/self/status, in MB; 0 where there is none.
int64_t peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  int64_t kb = 0;
  while (status >> key) {
    if (key == "VmHWM:" && status >> kb) return kb / 1024;
    status.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

StreamBenchResult bench_stream(const std::string& folder, const StreamBenchOptions& o,
                               const std::function<void(const std::string&)>& warn) {
  StreamBenchResult r;
  auto start = Clock::now();
  const FileListing files =
      list_image_split(folder, o.split, nullptr, listing_progress(folder, o.split, warn));
  r.list_seconds = seconds_since(start);
  r.files = files.size();
  BadImageLog bad(warn);
  const auto order = epoch_permutation_indices(o.seed, 0, files.size());
  BatchStream stream(files, whole_plan(order), o.batch_size, /*drop_last=*/true, 0, o.seed,
                     o.stream, torch::Device(o.device), &bad);
  const int64_t batches = std::min(o.batches, stream.size());
  start = Clock::now();
  double queued = 0;
  for (int64_t i = 0; i < batches; ++i) {
    queued += double(stream.queued());
    r.images += stream.next().images.size(0);
    if (i == 0) r.first_batch_seconds = seconds_since(start);
  }
  r.seconds = seconds_since(start);
  r.images_per_second = r.seconds > 0 ? double(r.images) / r.seconds : 0;
  r.mean_queued = batches > 0 ? queued / double(batches) : 0;
  r.threads = o.stream.thread_count();
  r.bad_images = bad.count();
  r.peak_rss_mb = peak_rss_mb();
  r.jpeg_decoder = stream.jpeg_decoder();
  return r;
}

}  // namespace vitlab
