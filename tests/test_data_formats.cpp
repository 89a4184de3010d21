// CIFAR binary, ImageFolder and synthetic data sets; bad input gives a DataError naming the file.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/cifar_reader.h"
#include "data/image_folder.h"
#include "data/synthetic.h"
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

using test::write_bytes;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// Runs `body`, requires a DataError whose message contains every string in `parts`.
template <typename F>
void require_data_error(F body, const std::vector<std::string>& parts) {
  try {
    body();
    FAIL("no DataError thrown");
  } catch (const DataError& e) {
    const std::string message = e.what();
    INFO("message: " << message);
    for (const auto& part : parts) CHECK(message.find(part) != std::string::npos);
  }
}

// A CIFAR record: label bytes, then pixel (c, y, x) = (base + c * 50 + y + x) mod 256.
void append_cifar_record(Bytes& out, const Bytes& label_bytes, int base) {
  out.insert(out.end(), label_bytes.begin(), label_bytes.end());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        out.push_back(static_cast<uint8_t>((base + c * 50 + y + x) % 256));
}

}  // namespace

TEST_CASE("CIFAR-10 reader on tiny hand-written batches", "[data]") {
  TempDir tmp("vitlab-test-data-cifar10");
  // Batch b (1..5) holds two records with labels 2b-2, 2b-1; the test batch three.
  for (int b = 1; b <= 5; ++b) {
    Bytes batch;
    append_cifar_record(batch, {uint8_t(2 * b - 2)}, 10 * b);
    append_cifar_record(batch, {uint8_t(2 * b - 1)}, 10 * b + 1);
    write_bytes(tmp / ("cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin"), batch);
  }
  Bytes test;
  for (int i = 0; i < 3; ++i) append_cifar_record(test, {uint8_t(9 - i)}, 100 + i);
  write_bytes(tmp / "cifar-10-batches-bin/test_batch.bin", test);
  std::ofstream(tmp / "cifar-10-batches-bin/batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

  // The folder above the tarball's folder is accepted.
  const DatasetSplits s = read_cifar10(tmp.path().string());
  REQUIRE(s.train.images.sizes() == torch::IntArrayRef({10, 3, 32, 32}));
  REQUIRE(s.test.images.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(torch::equal(s.train.labels, torch::arange(10, torch::kInt64)));
  CHECK(torch::equal(s.test.labels, torch::tensor({9, 8, 7}, torch::kInt64)));
  // Record 3 = batch 2, second record: base 21; pixel (c=2, y=5, x=7) = 21 + 100 + 12.
  CHECK(s.train.images[3][2][5][7].item<int>() == 133);
  CHECK(s.test.images[1][0][0][0].item<int>() == 101);
  CHECK(s.train.class_names.at(9) == "truck");
  CHECK(s.train.num_classes == 10);

  SECTION("truncated batch") {
    const std::string file = tmp / "cifar-10-batches-bin/data_batch_3.bin";
    Bytes bytes = read_bytes(file);
    bytes.pop_back();
    write_bytes(file, bytes);
    require_data_error([&] { read_cifar10(tmp.path().string()); }, {"data_batch_3.bin", "3073"});
  }
  SECTION("label out of range") {
    Bytes bad;
    append_cifar_record(bad, {10}, 0);
    write_bytes(tmp / "cifar-10-batches-bin/test_batch.bin", bad);
    require_data_error([&] { read_cifar10(tmp.path().string()); },
                       {"test_batch.bin", "out of range"});
  }
  SECTION("missing batch") {
    fs::remove(tmp / "cifar-10-batches-bin/data_batch_5.bin");
    require_data_error([&] { read_cifar10(tmp.path().string()); },
                       {"data_batch_5.bin", "not found"});
  }
  SECTION("empty batch") {
    write_bytes(tmp / "cifar-10-batches-bin/data_batch_2.bin", {});
    require_data_error([&] { read_cifar10(tmp.path().string()); },
                       {"data_batch_2.bin", "zero images"});
  }
  SECTION("wrong number of class names") {
    std::ofstream(tmp / "cifar-10-batches-bin/batches.meta.txt") << "a\nb\n";
    require_data_error([&] { read_cifar10(tmp.path().string()); },
                       {"batches.meta.txt", "2 class names"});
  }
}

TEST_CASE("CIFAR-100 reader uses the fine labels", "[data]") {
  TempDir tmp("vitlab-test-data-cifar100");
  Bytes train, test;
  append_cifar_record(train, {3, 77}, 0);   // coarse 3, fine 77
  append_cifar_record(train, {19, 99}, 5);  // coarse 19, fine 99
  append_cifar_record(test, {0, 1}, 9);
  write_bytes(tmp / "train.bin", train);
  write_bytes(tmp / "test.bin", test);
  const DatasetSplits s = read_cifar100(tmp.path().string());
  CHECK(torch::equal(s.train.labels, torch::tensor({77, 99}, torch::kInt64)));
  CHECK(torch::equal(s.test.labels, torch::tensor({1}, torch::kInt64)));
  CHECK(s.train.num_classes == 100);
  CHECK(s.train.images[1][1][2][3].item<int>() == 5 + 50 + 5);
  CHECK(s.train.class_names.at(42) == "42");

  Bytes bad;
  append_cifar_record(bad, {1, 100}, 0);
  write_bytes(tmp / "test.bin", bad);
  require_data_error([&] { read_cifar100(tmp.path().string()); }, {"test.bin", "out of range"});
}

namespace {

// Writes a w x h PNG with `channels` channels; pixel value (x, y, c) = fill + 10 c + x + y.
void write_png(const std::string& path, int w, int h, int channels, int fill) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> pixels;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        pixels.push_back(static_cast<uint8_t>(fill + 10 * c + x + y));
  REQUIRE(stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels) != 0);
}

}  // namespace

TEST_CASE("ImageFolder reads, converts channels and resizes", "[data]") {
  TempDir tmp("vitlab-test-data-imagefolder");
  write_png(tmp / "train/cat/a.png", 6, 4, 3, 100);  // first image: RGB, 4 high x 6 wide
  write_png(tmp / "train/cat/b.PNG", 6, 4, 1, 50);   // grey -> RGB by replication
  write_png(tmp / "train/dog/c.png", 12, 8, 4, 0);   // RGBA, twice the size -> resized
  std::ofstream(tmp / "train/dog/notes.txt") << "not an image";
  write_png(tmp / "test/dog/d.png", 6, 4, 3, 7);

  const DatasetSplits s = read_image_folder(tmp.path().string());
  CHECK(s.train.class_names == std::vector<std::string>{"cat", "dog"});
  REQUIRE(s.train.images.sizes() == torch::IntArrayRef({3, 3, 4, 6}));
  CHECK(torch::equal(s.train.labels, torch::tensor({0, 0, 1}, torch::kInt64)));
  CHECK(torch::equal(s.test.labels, torch::tensor({1}, torch::kInt64)));
  // a.png pixel (x=2, y=1, c=2) = 100 + 20 + 3.
  CHECK(s.train.images[0][2][1][2].item<int>() == 123);
  // b.png: grey replicated into all three channels.
  CHECK(torch::equal(s.train.images[1][0], s.train.images[1][2]));
  CHECK(s.train.images[1][1][3][5].item<int>() == 50 + 5 + 3);
  CHECK(s.test.images[0][0][0][0].item<int>() == 7);

  SECTION("data.image_size resizes every image") {
    const DatasetSplits r = read_image_folder(tmp.path().string(), 8);
    CHECK(r.train.images.sizes() == torch::IntArrayRef({3, 3, 8, 8}));
    CHECK(r.test.images.sizes() == torch::IntArrayRef({1, 3, 8, 8}));
  }
  SECTION("grey first image converts RGB to grey") {
    write_png(tmp / "train/ant/first.png", 6, 4, 1, 0);  // "ant" sorts first
    const DatasetSplits g = read_image_folder(tmp.path().string());
    CHECK(g.train.images.size(1) == 1);
    CHECK(g.train.class_names.front() == "ant");
  }
  SECTION("empty class folder") {
    fs::create_directories(tmp / "train/emu");
    require_data_error([&] { read_image_folder(tmp.path().string()); },
                       {"emu", "empty class folder"});
  }
  SECTION("undecodable image") {
    std::ofstream(tmp / "train/cat/broken.png") << "this is not a PNG";
    require_data_error([&] { read_image_folder(tmp.path().string()); }, {"broken.png", "decode"});
  }
  SECTION("hostile PNG header with huge dimensions") {
    Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    put_be32(png, 100000);                               // width
    put_be32(png, 100000);                               // height
    png.insert(png.end(), {8, 2, 0, 0, 0, 0, 0, 0, 0});  // depth, RGB, methods, CRC
    write_bytes(tmp / "train/cat/huge.png", png);
    require_data_error([&] { read_image_folder(tmp.path().string()); }, {"huge.png"});
  }
  SECTION("test class unknown to train") {
    write_png(tmp / "test/zebra/z.png", 6, 4, 3, 0);
    require_data_error([&] { read_image_folder(tmp.path().string()); }, {"zebra"});
  }
  SECTION("missing test folder") {
    fs::remove_all(tmp / "test");
    require_data_error([&] { read_image_folder(tmp.path().string()); }, {"test", "not found"});
  }
  SECTION("no class folders") {
    fs::remove_all(tmp / "train");
    fs::create_directories(tmp / "train");
    require_data_error([&] { read_image_folder(tmp.path().string()); }, {"train", "no class"});
  }
}

TEST_CASE("synthetic data is deterministic, balanced and class-dependent", "[data]") {
  SyntheticSpec spec;
  spec.num_classes = 4;
  spec.train_size = 400;
  spec.test_size = 101;
  spec.image_size = 16;
  spec.channels = 3;
  spec.seed = 5;
  const DatasetSplits a = make_synthetic(spec);
  const DatasetSplits b = make_synthetic(spec);
  spec.seed = 6;
  const DatasetSplits c = make_synthetic(spec);
  REQUIRE(a.train.images.sizes() == torch::IntArrayRef({400, 3, 16, 16}));
  CHECK(torch::equal(a.train.images, b.train.images));
  CHECK(torch::equal(a.test.labels, b.test.labels));
  CHECK_FALSE(torch::equal(a.train.images, c.train.images));
  CHECK(torch::equal(torch::bincount(a.train.labels), torch::full({4}, 100, torch::kInt64)));
  CHECK(
      torch::equal(torch::bincount(a.test.labels), torch::tensor({26, 25, 25, 25}, torch::kInt64)));

  // Nearest class mean classifies the test images far above chance (0.25): learnable.
  const torch::Tensor x = a.train.images.to(torch::kFloat).flatten(1);  // (N, C*H*W)
  std::vector<torch::Tensor> means;
  for (int k = 0; k < 4; ++k) means.push_back(x.index({a.train.labels == k}).mean(0));
  const torch::Tensor centroids = torch::stack(means);                   // (K, D)
  const torch::Tensor t = a.test.images.to(torch::kFloat).flatten(1);    // (M, D)
  const torch::Tensor predicted = torch::cdist(t, centroids).argmin(1);  // (M)
  const double accuracy = (predicted == a.test.labels).to(torch::kFloat).mean().item<double>();
  CHECK(accuracy > 0.9);
}
