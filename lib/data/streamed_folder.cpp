#include "data/streamed_folder.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "config/rand_augment_config.h"
#include "core/error.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;

double machine_memory_gb() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) / 1e9 : 8.0;
}

std::string test_split(const std::string& root) {
  std::error_code ec;
  return fs::is_directory(fs::path(root) / "test", ec) ? "test" : "val";
}

}  // namespace

std::string listing_cache_path(const std::string& run_dir, const std::string& split) {
  return (fs::path(run_dir) / fmt::format("listing-{}.txt", split)).string();
}

bool has_cached_listing(const std::string& run_dir, const std::string& split) {
  std::error_code ec;
  return !run_dir.empty() && fs::exists(listing_cache_path(run_dir, split), ec);
}

StreamedFolder list_streamed_folder(const DataConfig& config, const std::string& cache_dir,
                                    const ListingNote& note) {
  StreamedFolder f;
  const std::string train_cache = listing_cache_path(cache_dir, "train");
  const std::string test_cache = listing_cache_path(cache_dir, "test");
  // Each split from its cache where there is one (a run stopped between writing the two has
  // only the first); the folder is the config's, the same for a resumed run.
  f.train = has_cached_listing(cache_dir, "train")
                ? load_listing(train_cache)
                : list_image_split(config.path, "train", nullptr,
                                   listing_progress(config.path, "train", note));
  const std::string test = test_split(config.path);
  f.test = has_cached_listing(cache_dir, "test")
               ? load_listing(test_cache)
               : list_image_split(config.path, test, &f.train.class_names,
                                  listing_progress(config.path, test, note));
  f.train.root = f.test.root = config.path;
  if (f.test.class_names != f.train.class_names)
    fail<DataError>("{}: its classes differ from {}'s", test_cache, train_cache);
  for (const FileListing* l : {&f.train, &f.test})
    for (const auto& name : l->empty_classes) {
      const std::string folder = fmt::format("{}/{}/{}", l->root, l->split, name);
      if (config.on_bad_image == BadImagePolicy::kError)
        fail<DataError>(
            "{}: empty class folder (data.on_bad_image is \"error\"; \"skip\" skips it)", folder);
      f.warnings.push_back(
          fmt::format("{}: empty class folder, skipped (the class keeps its label)", folder));
    }
  return f;
}

bool decide_streaming(const DataConfig& config, const std::string& source, StreamedFolder* listed,
                      const ListingNote& note) {
  if (config.dataset != DatasetKind::kImageFolder || config.streaming == Streaming::kOff)
    return false;
  if (config.streaming == Streaming::kOn) return true;
  if (config.image_size == 0) return false;  // the in-memory reader takes the first image's size
  *listed = list_streamed_folder(config, "", note);
  const double side = double(config.image_size);
  const double gb = double(listed->train.size() + listed->test.size()) * 3.0 * side * side / 1e9;
  const double budget =
      config.memory_budget_gb > 0 ? config.memory_budget_gb : machine_memory_gb() / 2;
  if (gb <= budget) return false;
  if (config.has_subsets())
    config_error(
        source, "data.streaming",
        fmt::format("\"auto\": the decoded images ({:.1f} GB) exceed the budget ({:.1f} GB), "
                    "and subsets or validation splits of streamed folders are not supported "
                    "yet; remove them, or set \"off\" to decode the folder into memory anyway",
                    gb, budget));
  return true;
}

StreamOptions stream_options(const DataConfig& config, bool training) {
  StreamOptions o;
  o.image_size = config.image_size;
  o.random_crop = training && config.augment.random_resized_crop;
  o.flip = false;
  o.crop_pct = config.crop_pct;
  o.threads = config.decode_threads;
  o.skip_bad_images = config.on_bad_image == BadImagePolicy::kSkip;
  if (training && !config.augment.rand_augment.empty()) {
    o.rand_augment = true;
    o.rand_augment_config =
        parse_rand_augment(config.augment.rand_augment, "", "data.augment.rand_augment");
    if (config.mean.size() == 3)  // timm fills with the data's mean colour
      for (int c = 0; c < 3; ++c)
        o.rand_augment_config.fill[c] =
            static_cast<uint8_t>(std::clamp(std::lround(255 * config.mean[c]), 0L, 255L));
  }
  return o;
}

}  // namespace vitlab
