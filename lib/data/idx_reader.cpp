#include "data/idx_reader.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/file_bytes.h"

namespace vitlab {
namespace {

constexpr uint8_t kIdxTypeUbyte = 0x08;
constexpr int kMnistClasses = 10;

uint32_t read_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// Finds `stem` or `stem`.gz (or the dotted "train-images.idx3-ubyte" spelling some mirrors use).
std::string find_idx_file(const std::string& folder, const std::string& stem,
                          const std::string& hint) {
  std::string dotted = stem;
  const auto dash = dotted.find("-idx");
  if (dash != std::string::npos) dotted[dash] = '.';
  const std::string found =
      find_first_existing(folder, {stem + ".gz", stem, dotted + ".gz", dotted});
  if (found.empty())
    fail<DataError>("{}/{}.gz: file not found (also looked for {}){}", folder, stem, stem,
                    hint.empty() ? "" : "; " + hint);
  return found;
}

// (N, 1, H, W) uint8 images and (N) int64 labels from one image file and one label file.
Dataset read_idx_pair(const std::string& images_path, const std::string& labels_path) {
  torch::Tensor images = parse_idx_ubyte(read_data_file(images_path), 3, images_path);
  torch::Tensor labels = parse_idx_ubyte(read_data_file(labels_path), 1, labels_path);
  if (images.size(0) != labels.size(0))
    fail<DataError>("{} holds {} images but {} holds {} labels", images_path, images.size(0),
                    labels_path, labels.size(0));
  const int max_label = labels.max().item<uint8_t>();
  if (max_label >= kMnistClasses)
    fail<DataError>("{}: label {} is out of range (expected 0..{})", labels_path, max_label,
                    kMnistClasses - 1);
  Dataset d;
  d.images = images.unsqueeze(1);  // (N, H, W) -> (N, 1, H, W)
  d.labels = labels.to(torch::kInt64);
  d.num_classes = kMnistClasses;
  return d;
}

}  // namespace

torch::Tensor parse_idx_ubyte(const std::vector<uint8_t>& bytes, int expected_rank,
                              const std::string& path) {
  if (bytes.size() < 4)
    fail<DataError>("{}: {} bytes is too short for an IDX header", path, bytes.size());
  const uint32_t magic = read_be32(bytes.data());
  const uint32_t expected_magic =
      uint32_t{kIdxTypeUbyte} << 8 | static_cast<uint32_t>(expected_rank);
  if (magic != expected_magic)
    fail<DataError>(
        "{}: bad IDX magic number 0x{:08x} (expected 0x{:08x}: unsigned bytes, {} "
        "dimension{}); not an IDX {} file",
        path, magic, expected_magic, expected_rank, expected_rank == 1 ? "" : "s",
        expected_rank == 1 ? "label" : "image");
  const size_t header = 4 + 4 * static_cast<size_t>(expected_rank);
  if (bytes.size() < header)
    fail<DataError>("{}: truncated IDX header ({} bytes, expected at least {})", path, bytes.size(),
                    header);
  std::vector<int64_t> shape;
  std::string shape_text;
  // The product is checked against the real data size as it grows, so it cannot overflow.
  const uint64_t available = bytes.size() - header;
  uint64_t product = 1;
  bool exceeds = false;
  for (int i = 0; i < expected_rank; ++i) {
    const uint32_t dim = read_be32(bytes.data() + 4 + 4 * i);
    shape.push_back(dim);
    shape_text += (i ? " x " : "") + std::to_string(dim);
    if (dim == 0)
      fail<DataError>("{}: IDX header has a zero dimension ({}); zero images", path, shape_text);
    if (!exceeds && product > available / dim) exceeds = true;
    if (!exceeds) product *= dim;
  }
  if (exceeds || product != available)
    fail<DataError>(
        "{}: IDX header dimensions {} do not match the file: {} data bytes{} (file "
        "truncated or corrupt)",
        path, shape_text, available,
        exceeds ? " is fewer than the header needs"
                : fmt::format(" but the header needs {}", product));
  torch::Tensor t = torch::empty(shape, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + header, product);
  return t;
}

DatasetSplits read_mnist_format(const std::string& folder, bool fashion, const std::string& hint) {
  require_folder(folder, fashion ? "Fashion-MNIST" : "MNIST-format data", hint);
  const std::string base = fashion ? "fashion-mnist" : "mnist-format";
  DatasetSplits s;
  s.train = read_idx_pair(find_idx_file(folder, "train-images-idx3-ubyte", hint),
                          find_idx_file(folder, "train-labels-idx1-ubyte", hint));
  s.test = read_idx_pair(find_idx_file(folder, "t10k-images-idx3-ubyte", hint),
                         find_idx_file(folder, "t10k-labels-idx1-ubyte", hint));
  if (s.train.height() != s.test.height() || s.train.width() != s.test.width())
    fail<DataError>("{}: training images are {}x{} but test images are {}x{}", folder,
                    s.train.height(), s.train.width(), s.test.height(), s.test.width());
  const std::vector<std::string> names =
      fashion
          ? std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"}
          : numbered_class_names(kMnistClasses);
  s.train.class_names = s.test.class_names = names;
  s.train.name = base + "/train";
  s.test.name = base + "/test";
  return s;
}

DatasetSplits read_fashion_mnist(const std::string& folder) {
  if (!folder.empty()) return read_mnist_format(folder, /*fashion=*/true);
  // Machines without Debian packages (the GPU machine) get the copy third_party/stage.sh puts
  // beside the sources; __FILE__ is this file's absolute path in the tree that was compiled.
  const std::filesystem::path staged =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
      "third_party/staged/data/fashion-mnist";
  std::error_code ec;
  if (!std::filesystem::is_directory(kFashionMnistFolder, ec) &&
      std::filesystem::is_directory(staged, ec))
    return read_mnist_format(staged.string(), /*fashion=*/true);
  return read_mnist_format(kFashionMnistFolder, /*fashion=*/true, kFashionMnistHint);
}

}  // namespace vitlab
