// The file list of a streamed image folder (ImageNet/torchvision layout: <root>/<split>/<class>/
// *.jpg|jpeg|png), made once and cached as a text file in the run folder, so that a resumed or
// data-parallel run indexes exactly the same files in the same order.
#pragma once
#include <cstdint>
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

  int64_t size() const { return static_cast<int64_t>(files.size()); }
  std::string path(int64_t i) const { return root + "/" + files[static_cast<size_t>(i)]; }
};

// Lists <root>/<split>/<class>/. With `classes` null the split defines the classes (its sorted
// sub-folders); else every class folder must be one of them (DataError naming the folder).
// `progress(files so far)` is called every 5,000 files and at the end. Throws DataError naming
// the folder when it is missing, unreadable or has no class folders, or when no image is found.
FileListing list_image_split(const std::string& root, const std::string& split,
                             const std::vector<std::string>* classes,
                             const std::function<void(int64_t)>& progress = {});

// list_image_split's `progress` as lines for `note`: "listing <root>/<split>: N files".
std::function<void(int64_t)> listing_progress(const std::string& root, const std::string& split,
                                              std::function<void(const std::string&)> note);

// The listing as text: a header line ("vitlab-file-listing 1"), the root, the split, the class
// count, the class names one per line, then one "<label>\t<relative path>" line per file. Written
// atomically (a crash leaves the old file or none).
void save_listing(const FileListing& listing, const std::string& path);
// Throws DataError naming `path` and the line for anything malformed.
FileListing load_listing(const std::string& path);

}  // namespace vitlab
