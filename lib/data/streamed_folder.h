// A streamed image folder as a run sees it: the file listings of its training, validation and
// test parts after data.train_size, per_class, val_size and test_size (cached in the run folder,
// so that a resumed run indexes the same files), whether a config streams, and the decoding
// options its config gives the training and evaluation streams.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/data_config.h"
#include "data/file_listing.h"
#include "data/stream_loader.h"

namespace vitlab {

struct StreamedFolder {
  FileListing train, test;            // test: the folder's test/ split, else its val/
  FileListing val;                    // held out of train by data.val_size; else no files
  std::vector<std::string> warnings;  // empty class folders skipped under on_bad_image "skip"
};

// The listings' file names in a run folder.
std::string listing_cache_path(const std::string& run_dir, const std::string& split);
// Whether `run_dir` ("" for none) holds the listing of `split`: a run that streamed when it began.
bool has_cached_listing(const std::string& run_dir, const std::string& split);

// Whether `config` (an image folder) streams: "on"; or "auto" with data.image_size set and the
// decoded images of its parts (3 x image_size^2 bytes each) over data.memory_budget_gb (0: half
// of the machine's memory). Lists the folder to count them (the listings are returned in
// `listed` for reuse).
// `note` receives the listing's progress ("listing <folder>/train: 5000 files").
using ListingNote = std::function<void(const std::string&)>;
bool decide_streaming(const DataConfig& config, const std::string& source, StreamedFolder* listed,
                      const ListingNote& note = {});

// The folder's parts: from `cache_dir`'s listing files when the training part's exists (a resumed
// run; it is written last), else listed now and subset as the in-memory reader's rows would be
// (make_subsets' draw, so the same files). Empty class folders: DataError under on_bad_image
// "error", else a warning each. `source` prefixes a subset's ConfigError.
StreamedFolder list_streamed_folder(const DataConfig& config, const std::string& cache_dir,
                                    const ListingNote& note = {}, const std::string& source = "");

// What the config asks of the decoding threads: RandomResizedCrop for training when
// data.augment.random_resized_crop (else the evaluation crop), the evaluation crop at crop_pct,
// data.decode_threads, the bad-image policy, data.decoder. Flips stay on the device
// (data.augment.flip).
StreamOptions stream_options(const DataConfig& config, bool training);

}  // namespace vitlab
