// The file list of a streamed image folder (ImageNet/torchvision layout: <root>/<split>/<class>/
// *.jpg|jpeg|png), made once and cached as a text file in the run folder, so that a resumed or
// data-parallel run indexes exactly the same files in the same order.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vitlab {

struct FileListing {
  std::string root;                        // the folder listed
  std::string split;                       // "train", "val" or "test"
  std::vector<std::string> class_names;    // sorted class folders of the training split
  std::vector<std::string> files;          // relative to root, sorted within each class
  std::vector<int32_t> labels;             // files.size() entries, indices into class_names
  std::vector<std::string> empty_classes;  // class folders of this split without images
  // WebDataset shards (data/tar_shards.h): entry i is member members[i] of the tar files[i], its
  // bytes at offsets[i], sizes[i] long. All three empty for a folder of image files.
  std::vector<std::string> members;
  std::vector<int64_t> offsets, sizes;

  int64_t size() const { return static_cast<int64_t>(files.size()); }
  bool sharded() const { return !members.empty(); }
  // Entry i for messages: the file, or "<shard>:<member>".
  std::string path(int64_t i) const {
    const auto k = static_cast<size_t>(i);
    return root + "/" + files[k] + (sharded() ? ":" + members[k] : "");
  }
  // Entry i's bytes (at most `max_bytes`): DataError naming path(i) when it cannot be read.
  std::vector<uint8_t> read(int64_t i, uint64_t max_bytes) const;
  // Entries `rows` as a listing of their own: the same root, split and classes.
  FileListing select(const std::vector<int64_t>& rows) const;
};

// Lists <root>/<split>/<class>/, or the WebDataset shards <root>/<split>/*.tar (tar_shards.h).
// With `classes` null the split defines the classes (its sorted sub-folders); else every class
// folder must be one of them (DataError naming the folder).
// `progress(files so far)` is called every 5,000 files and at the end. Throws DataError naming
// the folder when it is missing, unreadable or has no class folders, or when no image is found.
FileListing list_image_split(const std::string& root, const std::string& split,
                             const std::vector<std::string>* classes,
                             const std::function<void(int64_t)>& progress = {});

// The names of `dir`'s entries that `keep` accepts, sorted. DataError naming `dir` when it cannot
// be listed.
std::vector<std::string> sorted_entry_names(
    const std::string& dir, const std::function<bool(const std::filesystem::directory_entry&)>& keep);

// list_image_split's `progress` as lines for `note`: "listing <root>/<split>: N files".
std::function<void(int64_t)> listing_progress(const std::string& root, const std::string& split,
                                              std::function<void(const std::string&)> note);

// The listing as text: a header line ("vitlab-file-listing 1"), the root, the split, the class
// count, the class names one per line, then one "<label>\t<relative path>" line per file; shards
// under "vitlab-file-listing 2", with "\t<member>\t<offset>\t<size>" after each path. Written
// atomically (a crash leaves the old file or none).
void save_listing(const FileListing& listing, const std::string& path);
// Throws DataError naming `path` and the line for anything malformed.
FileListing load_listing(const std::string& path);

}  // namespace vitlab
