#include "data/cifar_reader.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/file_bytes.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarImageBytes = 3 * kCifarSide * kCifarSide;

struct CifarLayout {
  std::string name;       // "cifar10" / "cifar100"
  std::string subfolder;  // the tarball's folder, accepted inside `folder`
  std::string probe;      // a file that must be in the data folder
  int label_bytes;        // 1 (CIFAR-10) or 2 (coarse, fine)
  int label_byte_used;    // which of the label bytes is the class
  int num_classes;
  int coarse_classes;  // range check for CIFAR-100's unused coarse label; 0 = none
  std::string names_file;
};

// `folder` itself, or its subfolder from the official tarball when the files are there.
std::string data_folder(const std::string& folder, const CifarLayout& layout) {
  require_folder(folder, layout.name, "");
  if (fs::exists(fs::path(folder) / layout.probe)) return folder;
  const fs::path nested = fs::path(folder) / layout.subfolder;
  if (fs::exists(nested / layout.probe)) return nested.string();
  return folder;  // the reader reports the missing file by its name in `folder`
}

// One binary batch file: (N, 3, 32, 32) images and (N) labels.
Dataset read_batch(const std::string& path, const CifarLayout& layout) {
  const std::vector<uint8_t> bytes = read_data_file(path);
  const int64_t record = layout.label_bytes + kCifarImageBytes;
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size == 0) fail<DataError>("{}: empty file; zero images", path);
  if (size % record != 0)
    fail<DataError>(
        "{}: {} bytes is not a whole number of {}-byte {} records (truncated or "
        "corrupt)",
        path, size, record, layout.name);
  const int64_t n = size / record;
  // from_blob does not copy; the narrow/select views are copied out before `bytes` dies.
  torch::Tensor all = torch::from_blob(const_cast<uint8_t*>(bytes.data()), {n, record},
                                       torch::kUInt8);  // (N, label bytes + 3072)
  Dataset d;
  d.labels = all.select(1, layout.label_byte_used).to(torch::kInt64);  // (N)
  d.images = all.narrow(1, layout.label_bytes, kCifarImageBytes)
                 .reshape({n, 3, kCifarSide, kCifarSide})  // R, G, B planes: (N, C, H, W)
                 .clone();
  const int64_t max_label = d.labels.max().item<int64_t>();
  if (max_label >= layout.num_classes)
    fail<DataError>("{}: label {} is out of range (expected 0..{}); is this a {} file?", path,
                    max_label, layout.num_classes - 1, layout.name);
  if (layout.coarse_classes > 0) {
    const int64_t max_coarse = all.select(1, 0).max().item<uint8_t>();
    if (max_coarse >= layout.coarse_classes)
      fail<DataError>("{}: coarse label {} is out of range (expected 0..{}); is this a {} file?",
                      path, max_coarse, layout.coarse_classes - 1, layout.name);
  }
  d.num_classes = layout.num_classes;
  return d;
}

Dataset read_batches(const std::string& folder, const std::vector<std::string>& files,
                     const CifarLayout& layout) {
  std::vector<torch::Tensor> images, labels;
  for (const auto& file : files) {
    const Dataset part = read_batch((fs::path(folder) / file).string(), layout);
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  Dataset d;
  d.images = images.size() == 1 ? images[0] : torch::cat(images, 0);
  d.labels = labels.size() == 1 ? labels[0] : torch::cat(labels, 0);
  d.num_classes = layout.num_classes;
  return d;
}

// Non-empty lines of the names file if it exists (there must be one per class), else "0".."K-1".
std::vector<std::string> class_names(const std::string& folder, const CifarLayout& layout) {
  const fs::path path = fs::path(folder) / layout.names_file;
  if (!fs::exists(path)) return numbered_class_names(layout.num_classes);
  std::ifstream in(path);
  if (!in) fail<DataError>("{}: cannot open the class names file", path.string());
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int>(names.size()) != layout.num_classes)
    fail<DataError>("{}: {} class names, expected {}", path.string(), names.size(),
                    layout.num_classes);
  return names;
}

DatasetSplits read_cifar(const std::string& path, const CifarLayout& layout,
                         const std::vector<std::string>& train_files,
                         const std::string& test_file) {
  const std::string folder = data_folder(path, layout);
  DatasetSplits s;
  s.train = read_batches(folder, train_files, layout);
  s.test = read_batches(folder, {test_file}, layout);
  s.train.class_names = s.test.class_names = class_names(folder, layout);
  s.train.name = layout.name + "/train";
  s.test.name = layout.name + "/test";
  return s;
}

}  // namespace

DatasetSplits read_cifar10(const std::string& folder) {
  const CifarLayout layout{"cifar10", "cifar-10-batches-bin", "data_batch_1.bin", 1, 0, 10,
                           0,         "batches.meta.txt"};
  return read_cifar(folder, layout,
                    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                     "data_batch_5.bin"},
                    "test_batch.bin");
}

DatasetSplits read_cifar100(const std::string& folder) {
  const CifarLayout layout{"cifar100", "cifar-100-binary",    "train.bin", 2, 1, 100,
                           20,         "fine_label_names.txt"};
  return read_cifar(folder, layout, {"train.bin"}, "test.bin");
}

}  // namespace vitlab
