#include "data/synthetic_folder.h"

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "data/image_decode.h"
#include "data/random.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;

// Image i of class k: (H, W, 3) uint8, its size and content drawn from (seed, i).
torch::Tensor synthetic_image(const SyntheticFolderOptions& o, int64_t i, int k) {
  std::mt19937_64 rng(mix_seed(o.seed, static_cast<uint64_t>(i)));
  std::mt19937_64 cls(mix_seed(o.seed ^ 0xc1a55, static_cast<uint64_t>(k)));
  const auto jitter = [&](int64_t side) {
    return std::max<int64_t>(16, static_cast<int64_t>(double(side) * (0.8 + 0.4 * uniform01(rng))));
  };
  const int64_t h = jitter(o.height), w = jitter(o.width);
  const auto colour = torch::tensor({float(uniform_below(cls, 256)), float(uniform_below(cls, 256)),
                                     float(uniform_below(cls, 256))})
                          .view({1, 1, 3});
  const double fx = 1 + double(uniform_below(cls, 12)), fy = 1 + double(uniform_below(cls, 12));
  const auto y = torch::linspace(0, 1, h).view({h, 1, 1});
  const auto x = torch::linspace(0, 1, w).view({1, w, 1});
  const auto wave =
      torch::sin((x * fx + y * fy) * 6.2832 + 6.2832 * uniform01(rng)) * 60;  // (H, W, 1)
  auto generator = at::detail::createCPUGenerator(mix_seed(o.seed, static_cast<uint64_t>(i) + 1));
  const auto noise = torch::randn({h, w, 3}, generator) * 20;
  return (colour + wave + noise).clamp(0, 255).to(torch::kUInt8).contiguous();  // (H, W, 3)
}

}  // namespace

SyntheticFolderSummary write_synthetic_folder(const std::string& out,
                                              const SyntheticFolderOptions& o,
                                              const std::function<void(int64_t)>& progress) {
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)))
    fail<IoError>("{}: exists and is not an empty folder; the generator writes only into a new one",
                  out);
  if (!have_turbojpeg())
    fail<DataError>("writing a synthetic JPEG folder needs TurboJPEG, which this build lacks");
  if (o.images < o.classes || o.classes <= 0)
    fail<DataError>("a synthetic folder needs at least one image per class ({} images, {} classes)",
                    o.images, o.classes);
  for (const char* split : {"train", "val"})
    for (int k = 0; k < o.classes; ++k)
      fs::create_directories(fs::path(out) / split / fmt::format("class_{:03d}", k));
  const int threads = o.threads > 0 ? o.threads : available_cores();
  std::atomic<int64_t> next{0}, done{0}, val{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex progress_mutex;
  std::exception_ptr error;
  const auto work = [&] {
    use_one_compute_thread_here();  // each thread makes its own images (see stream_loader.cpp)
    try {
      for (int64_t i = next++; i < o.images; i = next++) {
        const int k = static_cast<int>(i % o.classes);
        const int64_t index_in_class = i / o.classes,
                      per_class = (o.images + o.classes - 1 - k) / o.classes;
        const bool is_val =
            index_in_class < static_cast<int64_t>(o.val_fraction * double(per_class));
        const auto jpeg = encode_jpeg(synthetic_image(o, i, k), o.quality);
        const fs::path file = fs::path(out) / (is_val ? "val" : "train") /
                              fmt::format("class_{:03d}", k) / fmt::format("img_{:07d}.jpg", i);
        // Atomic: a generator stopped midway leaves no truncated JPEG behind.
        write_file_atomic(file.string(), std::string(jpeg.begin(), jpeg.end()));
        bytes += jpeg.size();
        val += is_val;
        const int64_t n = ++done;
        if (progress && n % 1000 == 0) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(n);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      if (!error) error = std::current_exception();
      next = o.images;  // the others stop too
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return {o.images - val.load(), val.load(), bytes.load()};
}

}  // namespace vitlab
