#include "data/image_folder.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "data/file_bytes.h"
#include "data/image_checks.h"
#include "data/resize.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 28;  // 256 MiB
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;       // 8192 x 8192

bool is_image_file(const fs::directory_entry& entry) {
  if (!entry.is_regular_file()) return false;
  std::string ext = entry.path().extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Sorted entries of `dir` that pass `keep` (sorted so the label order is the same everywhere).
template <typename Keep>
std::vector<fs::path> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (keep(*it)) out.push_back(it->path());
  if (ec) fail<DataError>("{}: cannot list the folder: {}", dir.string(), ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

struct SplitFiles {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

// The image files of every class folder under `split_dir`, labelled by `class_names`' order.
SplitFiles list_split(const fs::path& split_dir, const std::vector<std::string>& class_names,
                      bool define_classes, std::vector<std::string>* defined) {
  require_folder(split_dir.string(), "image-folder split", "");
  const auto class_dirs =
      sorted_entries(split_dir, [](const fs::directory_entry& e) { return e.is_directory(); });
  if (class_dirs.empty())
    fail<DataError>("{}: no class sub-folders (expected {}/<class>/*.png|jpg|jpeg)",
                    split_dir.string(), split_dir.string());
  SplitFiles files;
  for (const auto& class_dir : class_dirs) {
    const std::string name = class_dir.filename().string();
    int64_t label;
    if (define_classes) {
      label = static_cast<int64_t>(defined->size());
      defined->push_back(name);
    } else {
      const auto it = std::find(class_names.begin(), class_names.end(), name);
      if (it == class_names.end())
        fail<DataError>("{}: class \"{}\" has no folder in the training split", class_dir.string(),
                        name);
      label = it - class_names.begin();
    }
    const auto images = sorted_entries(class_dir, is_image_file);
    if (images.empty())
      fail<DataError>("{}: empty class folder (no .png, .jpg or .jpeg images)", class_dir.string());
    for (const auto& image : images) {
      files.paths.push_back(image.string());
      files.labels.push_back(label);
    }
  }
  return files;
}

// Decodes every file into one (N, C, height, width) uint8 tensor.
Dataset decode_split(const SplitFiles& files, int channels, int64_t height, int64_t width) {
  const int64_t n = static_cast<int64_t>(files.paths.size());
  Dataset d;
  d.images = torch::empty({n, channels, height, width}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor image = decode_image_file(files.paths[i], channels);  // (C, h, w)
    d.images[i].copy_(resize_images(image.unsqueeze(0), height, width)[0]);
  }
  d.labels = torch::tensor(files.labels, torch::kInt64);
  return d;
}

}  // namespace

torch::Tensor decode_image_file(const std::string& path, int channels) {
  const std::vector<uint8_t> bytes = read_data_file(path, kMaxImageFileBytes);
  if (bytes.empty()) fail<DataError>("{}: empty image file", path);
  if (bytes.size() > static_cast<size_t>(INT32_MAX))
    fail<DataError>("{}: image file too large", path);
  const int length = static_cast<int>(bytes.size());
  check_image_bytes(bytes, path);  // what stb 2.27 trusts
  int width = 0, height = 0, file_channels = 0;
  // Check the header's size before stb allocates anything.
  if (!stbi_info_from_memory(bytes.data(), length, &width, &height, &file_channels))
    fail<DataError>("{}: cannot decode image: {}", path, stbi_failure_reason());
  if (width <= 0 || height <= 0 || int64_t{width} * height > kMaxImagePixels)
    fail<DataError>("{}: image size {}x{} is empty or larger than {} pixels", path, width, height,
                    kMaxImagePixels);
  const int wanted = channels > 0 ? channels : (file_channels <= 2 ? 1 : 3);
  int w = 0, h = 0, got = 0;
  // stb converts while decoding: grey -> RGB by replication, RGB -> grey by luma, alpha dropped.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), length, &w, &h, &got, wanted), stbi_image_free);
  if (!pixels) fail<DataError>("{}: cannot decode image: {}", path, stbi_failure_reason());
  torch::Tensor hwc = torch::from_blob(pixels.get(), {h, w, wanted}, torch::kUInt8);  // (H, W, C)
  return hwc.permute({2, 0, 1}).contiguous();  // (C, H, W), a copy that owns its memory
}

DatasetSplits read_image_folder(const std::string& folder, int image_size) {
  require_folder(folder, "image-folder data", "");
  std::vector<std::string> class_names;
  const SplitFiles train_files =
      list_split(fs::path(folder) / "train", {}, /*define_classes=*/true, &class_names);
  const SplitFiles test_files =
      list_split(fs::path(folder) / "test", class_names, /*define_classes=*/false, nullptr);

  // The first training image fixes the channel count and, without image_size, the size.
  const torch::Tensor first = decode_image_file(train_files.paths[0]);  // (C, H, W)
  const int channels = static_cast<int>(first.size(0));
  const int64_t height = image_size > 0 ? image_size : first.size(1);
  const int64_t width = image_size > 0 ? image_size : first.size(2);

  DatasetSplits s;
  s.train = decode_split(train_files, channels, height, width);
  s.test = decode_split(test_files, channels, height, width);
  const int num_classes = static_cast<int>(class_names.size());
  for (Dataset* d : {&s.train, &s.test}) {
    d->num_classes = num_classes;
    d->class_names = class_names;
  }
  s.train.name = "image-folder/train";
  s.test.name = "image-folder/test";
  return s;
}

}  // namespace vitlab
