#include "data/streamed_folder.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "config/rand_augment_config.h"
#include "core/error.h"
#include "data/subset.h"

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

// The listing indices a part of make_subsets carries in place of its images.
std::vector<int64_t> rows_of(const Dataset& part) {
  const auto r = part.images.flatten().contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

// A listing as make_subsets' input: its labels, and in place of each image its own index, which
// the draw carries through to the parts.
Dataset as_rows(const FileListing& listing, const std::string& name) {
  Dataset d;
  d.images = torch::arange(listing.size(), torch::kInt64).view({-1, 1, 1, 1});  // (N, 1, 1, 1)
  d.labels = torch::tensor(std::vector<int64_t>(listing.labels.begin(), listing.labels.end()),
                           torch::kInt64);
  d.num_classes = static_cast<int>(listing.class_names.size());
  d.class_names = listing.class_names;
  d.name = name;
  return d;
}

// data.train_size, per_class, val_size and test_size on freshly listed splits.
void take_subsets(StreamedFolder& f, const DataConfig& config, const std::string& source) {
  if (!config.has_subsets()) return;
  const SubsetSplits parts = make_subsets(
      {as_rows(f.train, "image-folder/train"), as_rows(f.test, "image-folder/" + f.test.split)},
      config, source);
  f.val = f.train.select(rows_of(parts.val));  // before train is replaced by its part
  f.val.split = "val-of-train";
  f.train = f.train.select(rows_of(parts.train));
  f.test = f.test.select(rows_of(parts.test));
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
                                    const ListingNote& note, const std::string& source) {
  StreamedFolder f;
  const std::string train_cache = listing_cache_path(cache_dir, "train");
  const std::string test_cache = listing_cache_path(cache_dir, "test");
  // A resumed run reads the parts it began with: the training part's listing is written last, so
  // the others are there too (test was listed by itself where an older run wrote train first).
  const bool resumed = has_cached_listing(cache_dir, "train");
  f.train = resumed ? load_listing(train_cache)
                    : list_image_split(config.path, "train", nullptr,
                                       listing_progress(config.path, "train", note));
  const std::string test = test_split(config.path);
  f.test = resumed && has_cached_listing(cache_dir, "test")
               ? load_listing(test_cache)
               : list_image_split(config.path, test, &f.train.class_names,
                                  listing_progress(config.path, test, note));
  if (resumed && has_cached_listing(cache_dir, "val"))
    f.val = load_listing(listing_cache_path(cache_dir, "val"));
  f.train.root = f.test.root = f.val.root = config.path;
  if (f.test.class_names != f.train.class_names)
    fail<DataError>("{}: its classes differ from {}'s", test_cache, train_cache);
  if (!resumed) take_subsets(f, config, source);
  else if (config.val_size > 0 && f.val.size() == 0)
    fail<DataError>("{}: missing, but {} holds a training part and data.val_size is {}",
                    listing_cache_path(cache_dir, "val"), cache_dir, config.val_size);
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
  *listed = list_streamed_folder(config, "", note, source);
  const double side = double(config.image_size);
  const double images = double(listed->train.size() + listed->val.size() + listed->test.size());
  const double budget =
      config.memory_budget_gb > 0 ? config.memory_budget_gb : machine_memory_gb() / 2;
  return images * 3.0 * side * side / 1e9 > budget;
}

StreamOptions stream_options(const DataConfig& config, bool training) {
  StreamOptions o;
  o.image_size = config.image_size;
  o.random_crop = training && config.augment.random_resized_crop;
  o.flip = false;
  o.crop_pct = config.crop_pct;
  o.threads = config.decode_threads;
  o.skip_bad_images = config.on_bad_image == BadImagePolicy::kSkip;
  o.nvjpeg = config.decoder == Decoder::kNvjpeg;
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
