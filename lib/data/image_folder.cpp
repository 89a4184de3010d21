#include "data/image_folder.h"

#include <vector>

#include "core/error.h"
#include "data/file_bytes.h"
#include "data/file_listing.h"
#include "data/image_decode.h"
#include "data/resize.h"

namespace vitlab {
namespace {

// The in-memory decoded split: every file of `files`, resized to height x width.
Dataset decode_split(const FileListing& files, int channels, int64_t height, int64_t width) {
  const int64_t n = files.size();
  Dataset d;
  d.images = torch::empty({n, channels, height, width}, torch::kUInt8);  // (N, C, H, W)
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor image = decode_listed_image(files, i, channels);  // (C, h, w)
    d.images[i].copy_(resize_images(image.unsqueeze(0), height, width)[0]);
  }
  d.labels = torch::tensor(std::vector<int64_t>(files.labels.begin(), files.labels.end()),
                           torch::kInt64);
  return d;
}

// A split's listing; an empty class folder is an error here (the streamed reader may skip it).
FileListing list_split(const std::string& folder, const std::string& split,
                       const std::vector<std::string>* classes) {
  FileListing l = list_image_split(folder, split, classes);
  if (!l.empty_classes.empty())
    fail<DataError>("{}/{}/{}: empty class folder (no .png, .jpg or .jpeg images)", folder, split,
                    l.empty_classes.front());
  return l;
}

}  // namespace

torch::Tensor decode_listed_image(const FileListing& files, int64_t i, int channels) {
  const std::vector<uint8_t> bytes = files.read(i, kMaxImageFileBytes);
  return decode_image_bytes(bytes, files.path(i), channels).permute({2, 0, 1}).contiguous();  // (C, H, W)
}

torch::Tensor decode_image_file(const std::string& path, int channels) {
  const std::vector<uint8_t> bytes = read_data_file(path, kMaxImageFileBytes);
  return decode_image_bytes(bytes, path, channels).permute({2, 0, 1}).contiguous();  // (C, H, W)
}

DatasetSplits read_image_folder(const std::string& folder, int image_size) {
  require_folder(folder, "image-folder data", "");
  const FileListing train_files = list_split(folder, "train", nullptr);
  const FileListing test_files = list_split(folder, "test", &train_files.class_names);

  // The first training image fixes the channel count and, without image_size, the size.
  const torch::Tensor first = decode_listed_image(train_files, 0);  // (C, H, W)
  const int channels = static_cast<int>(first.size(0));
  const int64_t height = image_size > 0 ? image_size : first.size(1);
  const int64_t width = image_size > 0 ? image_size : first.size(2);

  DatasetSplits s;
  s.train = decode_split(train_files, channels, height, width);
  s.test = decode_split(test_files, channels, height, width);
  const int num_classes = static_cast<int>(train_files.class_names.size());
  for (Dataset* d : {&s.train, &s.test}) {
    d->num_classes = num_classes;
    d->class_names = train_files.class_names;
  }
  s.train.name = "image-folder/train";
  s.test.name = "image-folder/test";
  return s;
}

}  // namespace vitlab
