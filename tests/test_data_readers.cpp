// IDX readers (Fashion-MNIST, raw and gzip) and every bad-input case giving a DataError that names
// the file. CIFAR, ImageFolder and synthetic data: test_data_formats.cpp.
#include <torch/torch.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/file_bytes.h"
#include "data/idx_reader.h"
#include "test_helpers.h"

namespace fs = std::filesystem;
using namespace vitlab;
using Bytes = std::vector<uint8_t>;

namespace {

using test::TempDir;

// tmp / "name": a path inside the temporary folder.
std::string operator/(const TempDir& dir, const std::string& name) {
  return dir.file(name);
}

using test::require_data_error;
using test::write_bytes;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// An IDX ubyte file with the given dimensions (as written in the header) and payload.
Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& payload, uint8_t type = 0x08) {
  Bytes out = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) put_be32(out, d);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// n images of h x w with pixel (i, y, x) = (7 i + 3 y + x) mod 256, and labels i mod 10.
Bytes image_payload(int n, int h, int w) {
  Bytes p;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) p.push_back(static_cast<uint8_t>((7 * i + 3 * y + x) % 256));
  return p;
}
Bytes label_payload(int n) {
  Bytes p;
  for (int i = 0; i < n; ++i) p.push_back(static_cast<uint8_t>(i % 10));
  return p;
}

// A complete MNIST-format folder; gzip picks .gz files.
void write_mnist_folder(const std::string& dir, bool gzip, int n_train = 12, int n_test = 5) {
  fs::create_directories(dir);
  auto put = [&](const std::string& stem, const Bytes& bytes) {
    if (gzip)
      write_gzip(dir + "/" + stem + ".gz", bytes);
    else
      write_bytes(dir + "/" + stem, bytes);
  };
  put("train-images-idx3-ubyte", idx_file({uint32_t(n_train), 4, 3}, image_payload(n_train, 4, 3)));
  put("train-labels-idx1-ubyte", idx_file({uint32_t(n_train)}, label_payload(n_train)));
  put("t10k-images-idx3-ubyte", idx_file({uint32_t(n_test), 4, 3}, image_payload(n_test, 4, 3)));
  put("t10k-labels-idx1-ubyte", idx_file({uint32_t(n_test)}, label_payload(n_test)));
}

}  // namespace

TEST_CASE("Fashion-MNIST loads from the Debian package", "[data]") {
  const DatasetSplits s = read_fashion_mnist();
  REQUIRE(s.train.images.sizes() == torch::IntArrayRef({60000, 1, 28, 28}));
  REQUIRE(s.test.images.sizes() == torch::IntArrayRef({10000, 1, 28, 28}));
  CHECK(s.train.images.scalar_type() == torch::kUInt8);
  CHECK(s.train.labels.scalar_type() == torch::kInt64);
  CHECK(s.train.labels[0].item<int64_t>() == 9);
  CHECK(s.test.labels[0].item<int64_t>() == 9);
  CHECK(s.train.num_classes == 10);
  CHECK(s.train.class_names.at(9) == "Ankle boot");
  CHECK(s.train.class_names.at(0) == "T-shirt/top");
  // Balanced: 6000 per class in train, 1000 in test.
  CHECK(torch::equal(torch::bincount(s.train.labels), torch::full({10}, 6000, torch::kInt64)));
  CHECK(torch::equal(torch::bincount(s.test.labels), torch::full({10}, 1000, torch::kInt64)));
  CHECK(s.train.images.max().item<int>() == 255);
  CHECK(s.train.name == "fashion-mnist/train");
}

TEST_CASE("IDX gzip and raw files give identical tensors", "[data]") {
  TempDir tmp("vitlab-test-data-idx");
  write_mnist_folder(tmp / "raw", false);
  write_mnist_folder(tmp / "gz", true);
  const DatasetSplits raw = read_mnist_format(tmp / "raw", false);
  const DatasetSplits gz = read_mnist_format(tmp / "gz", false);
  REQUIRE(raw.train.images.sizes() == torch::IntArrayRef({12, 1, 4, 3}));
  CHECK(torch::equal(raw.train.images, gz.train.images));
  CHECK(torch::equal(raw.train.labels, gz.train.labels));
  CHECK(torch::equal(raw.test.images, gz.test.images));
  CHECK(torch::equal(raw.test.labels, gz.test.labels));
  // Content is what was written: pixel (i, y, x) = 7 i + 3 y + x.
  CHECK(raw.train.images[5][0][2][1].item<int>() == 7 * 5 + 3 * 2 + 1);
  CHECK(raw.train.labels[11].item<int64_t>() == 1);
  CHECK(raw.train.class_names.at(3) == "3");
}

TEST_CASE("gzip reading: concatenated members and the size cap", "[data]") {
  TempDir tmp("vitlab-test-data-gzip");
  const Bytes a = {1, 2, 3}, b = {4, 5};
  write_gzip(tmp / "a.gz", a);
  write_gzip(tmp / "b.gz", b);
  Bytes both = read_bytes(tmp / "a.gz");
  const Bytes second = read_bytes(tmp / "b.gz");
  both.insert(both.end(), second.begin(), second.end());
  write_bytes(tmp / "ab.gz", both);
  CHECK(read_data_file(tmp / "ab.gz") == Bytes({1, 2, 3, 4, 5}));
  // A highly compressible file larger than the cap is refused.
  write_gzip(tmp / "zeros.gz", Bytes(1 << 20, 0));
  require_data_error([&] { read_data_file(tmp / "zeros.gz", 1000); }, {"zeros.gz", "more than"});
}

TEST_CASE("bad IDX input gives a DataError naming the file", "[data]") {
  TempDir tmp("vitlab-test-data-badidx");
  const std::string labels = "train-labels-idx1-ubyte";
  const std::string images = "train-images-idx3-ubyte";

  SECTION("missing folder") {
    require_data_error([&] { read_mnist_format(tmp / "nowhere", false); },
                       {"nowhere", "not found"});
  }
  SECTION("missing folder with the package hint") {
    require_data_error([&] { read_mnist_format(tmp / "nowhere", true, kFashionMnistHint); },
                       {"nowhere", "install the Debian package dataset-fashion-mnist"});
  }
  SECTION("missing file") {
    write_mnist_folder(tmp / "d", true);
    fs::remove(tmp / "d/t10k-labels-idx1-ubyte.gz");
    require_data_error([&] { read_mnist_format(tmp / "d", false); },
                       {"t10k-labels-idx1-ubyte", "not found"});
  }
  SECTION("truncated gzip") {
    write_mnist_folder(tmp / "d", true, 200);
    const std::string file = tmp / ("d/" + images + ".gz");
    Bytes bytes = read_bytes(file);
    bytes.resize(bytes.size() / 2);
    write_bytes(file, bytes);
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images + ".gz", "truncated"});
  }
  SECTION("corrupt gzip: bad compression method") {
    write_mnist_folder(tmp / "d", true);
    const std::string file = tmp / ("d/" + labels + ".gz");
    Bytes bytes = read_bytes(file);
    bytes[2] = 7;  // the method byte; only 8 (deflate) exists
    write_bytes(file, bytes);
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {labels + ".gz", "corrupt"});
  }
  SECTION("corrupt gzip: CRC mismatch") {
    write_mnist_folder(tmp / "d", true);
    const std::string file = tmp / ("d/" + labels + ".gz");
    Bytes bytes = read_bytes(file);
    bytes[bytes.size() - 8] ^= 0xff;  // the trailer's CRC-32
    write_bytes(file, bytes);
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {labels + ".gz", "corrupt"});
  }
  SECTION(".gz name without gzip data") {
    write_mnist_folder(tmp / "d", false);
    fs::rename(tmp / ("d/" + labels), tmp / ("d/" + labels + ".gz"));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {labels + ".gz", "gzip"});
  }
  SECTION("bad magic") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), idx_file({12, 4, 3}, image_payload(12, 4, 3), 0x0D));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "magic"});
  }
  SECTION("labels file where images are expected") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), idx_file({12}, label_payload(12)));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "magic"});
  }
  SECTION("header dims that do not match the file size") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), idx_file({100, 4, 3}, image_payload(12, 4, 3)));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "do not match"});
  }
  SECTION("hostile header dims are refused before allocating") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), idx_file({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {1, 2, 3}));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "do not match"});
  }
  SECTION("truncated header") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), {0, 0, 8, 3, 0, 0});
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "header"});
  }
  SECTION("image and label counts disagree") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + labels), idx_file({11}, label_payload(11)));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, labels, "12", "11"});
  }
  SECTION("label out of range") {
    write_mnist_folder(tmp / "d", false);
    Bytes payload = label_payload(12);
    payload[4] = 10;
    write_bytes(tmp / ("d/" + labels), idx_file({12}, payload));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {labels, "out of range"});
  }
  SECTION("zero images") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + images), idx_file({0, 4, 3}, {}));
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {images, "zero"});
  }
  SECTION("empty file") {
    write_mnist_folder(tmp / "d", false);
    write_bytes(tmp / ("d/" + labels), {});
    require_data_error([&] { read_mnist_format(tmp / "d", false); }, {labels, "too short"});
  }
}
