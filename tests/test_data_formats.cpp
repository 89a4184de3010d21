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
#include "data/image_decode.h"
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

using test::require_data_error;
using test::write_bytes;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
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

TEST_CASE("image decoder refuses a JPEG Huffman table of over 256 symbols (found by fuzzing)",
          "[data]") {
  TempDir tmp("vitlab-test-data-jpeg");
  // A valid JPEG (one DHT segment holding four tables) still decodes.
  std::vector<uint8_t> pixels(8 * 6 * 3, 90);
  REQUIRE(stbi_write_jpg((tmp / "ok.jpg").c_str(), 8, 6, 3, pixels.data(), 90) != 0);
  CHECK(decode_image_file(tmp / "ok.jpg").sizes() == torch::IntArrayRef({3, 6, 8}));
  // Debian's stb_image 2.27 writes past its table for this one (17 codes of each length).
  Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x23, 0x00};  // SOI, DHT of 2 + 17 + 272 bytes
  for (int length = 1; length <= 16; ++length) jpeg.push_back(17);
  jpeg.insert(jpeg.end(), 272, 0);
  write_bytes(tmp / "bad.jpg", jpeg);
  require_data_error([&] { decode_image_file(tmp / "bad.jpg"); },
                     {"bad.jpg", "corrupt or truncated JPEG", "Huffman table with 272 symbols"});
  // The same with the file cut inside the table's counts, which stb reads on as zeros.
  write_bytes(tmp / "cut.jpg", {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x14, 0x00, 200, 200});
  require_data_error([&] { decode_image_file(tmp / "cut.jpg"); },
                     {"cut.jpg", "Huffman table with 400 symbols"});
  // And with 0xFF fill bytes before the SOI marker, which stb skips.
  jpeg.insert(jpeg.begin(), 5, 0xFF);
  write_bytes(tmp / "fill.jpg", jpeg);
  require_data_error([&] { decode_image_file(tmp / "fill.jpg"); },
                     {"fill.jpg", "Huffman table with 272 symbols"});
}

TEST_CASE("image decoder refuses a JPEG scan with an undefined Huffman table (found by fuzzing)",
          "[data]") {
  // stb 2.27 decodes such a scan with uninitialised tables. SOI, a frame of 8x8 grey pixels, one
  // DC table (class 0, slot 0) and a scan that also names AC table 0, which nothing defines.
  TempDir tmp("vitlab-test-data-jpeg-scan");
  Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8, 0, 8, 0, 8, 1, 1, 0x11, 0};
  const Bytes dht = {0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0,
                     0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0};
  jpeg.insert(jpeg.end(), dht.begin(), dht.end());
  const Bytes sos = {0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0, 0x00, 0xFF, 0xD9};
  jpeg.insert(jpeg.end(), sos.begin(), sos.end());
  write_bytes(tmp / "scan.jpg", jpeg);
  require_data_error([&] { decode_image_file(tmp / "scan.jpg"); },
                     {"scan.jpg", "a scan uses a Huffman table that the file does not define"});
}

TEST_CASE("image decoder refuses sizes that the file's bytes cannot hold (found by fuzzing)",
          "[data]") {
  // stb 2.27 allocates a PNG chunk's declared length before reading it, and inflates into a
  // buffer of the declared image size.
  TempDir tmp("vitlab-test-data-png-sizes");
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  put_be32(png, 4);
  put_be32(png, 4);
  png.insert(png.end(), {8, 0, 0, 0, 0, 0, 0, 0, 0});  // 8-bit grey, CRC (stb does not check it)
  Bytes idat = png;
  put_be32(idat, 0x40000000);  // an IDAT chunk of 1 GiB in a 50-byte file
  idat.insert(idat.end(), {'I', 'D', 'A', 'T', 0, 0});
  write_bytes(tmp / "idat.png", idat);
  require_data_error(
      [&] { decode_image_file(tmp / "idat.png"); },
      {"idat.png", "corrupt or truncated PNG", "chunk \"IDAT\" declares 1073741824"});
  // 8000 x 8000 pixels from 10 compressed bytes: deflate cannot expand that far.
  Bytes big = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  put_be32(big, 8000);
  put_be32(big, 8000);
  big.insert(big.end(), {8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 'I', 'D', 'A', 'T'});
  big.insert(big.end(), 14, 0);  // 10 data bytes and a CRC
  write_bytes(tmp / "big.png", big);
  require_data_error([&] { decode_image_file(tmp / "big.png"); },
                     {"big.png", "more than its 10 compressed bytes can hold"});
  // A JPEG frame of 8000 x 8000 pixels in a 17-byte file.
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8,    0x1F, 0x40,
                      0x1F, 0x40, 1,    1,    0x11, 0,    0xFF, 0xD9};
  write_bytes(tmp / "big.jpg", jpeg);
  require_data_error([&] { decode_image_file(tmp / "big.jpg"); },
                     {"big.jpg", "8000x8000 pixels cannot be coded in 17 bytes"});
}

TEST_CASE("image decoder reads PNG and JPEG only, whatever the content", "[data]") {
  TempDir tmp("vitlab-test-data-bmp");
  std::vector<uint8_t> pixels(4 * 4 * 3, 200);
  REQUIRE(stbi_write_bmp((tmp / "bmp.png").c_str(), 4, 4, 3, pixels.data()) != 0);
  require_data_error([&] { decode_image_file(tmp / "bmp.png"); }, {"bmp.png", "cannot decode"});
}

TEST_CASE("the in-memory reader decodes JPEGs as the streamed reader does (stb 2.27 shifted past its bits)",
          "[data]") {
  if (!have_turbojpeg()) return;  // Debian's build and the GPU build have it
  torch::manual_seed(8);
  const auto noise = [](std::vector<int64_t> shape) {
    return torch::randint(0, 256, shape, torch::kUInt8);
  };
  // Colour, grey and Adobe CMYK files: the streamed reader's RGB pixels bit for bit, one channel
  // for a grey file, stb's luma for a colour file asked for one channel.
  for (const auto& [name, hwc] : {std::make_pair("rgb.jpg", noise({40, 57, 3})),
                                  std::make_pair("grey.jpg", noise({33, 20, 1})),
                                  std::make_pair("cmyk.jpg", noise({24, 31, 4}))}) {
    INFO(name);
    const auto bytes = encode_jpeg(hwc, 90);
    const auto rgb = decode_rgb(bytes, name, 0).hwc;  // (H, W, 3)
    CHECK(torch::equal(decode_image_bytes(bytes, name, 3), rgb));
    const bool grey = hwc.size(2) == 1;
    const auto own = decode_image_bytes(bytes, name, 0);
    CHECK(own.size(2) == (grey ? 1 : 3));
    const auto c = rgb.to(torch::kInt32);
    const auto luma = torch::div(c.select(2, 0) * 77 + c.select(2, 1) * 150 + c.select(2, 2) * 29,
                                 256, "floor");
    CHECK(torch::equal(decode_image_bytes(bytes, name, 1).squeeze(2).to(torch::kInt32),
                       grey ? c.select(2, 0) : luma));
  }
  // 0xFF fill bytes before the SOI marker, which stb skips: the same pixels.
  Bytes filled = encode_jpeg(noise({16, 24, 3}), 90);
  const auto plain = decode_image_bytes(filled, "plain.jpg", 3);
  filled.insert(filled.begin(), 4, 0xFF);
  CHECK(torch::equal(decode_image_bytes(filled, "filled.jpg", 3), plain));
  // The fuzzing inputs (their first byte picks the channels): entropy-coded data that runs out
  // inside a Huffman code, the second after fill bytes. Each is decoded, as the streamed reader
  // reads it, or refused with its name; under UBSan (make test-sanitize) stb's shift by 33
  // stopped the process here.
  for (const char* name : {"ubsan-jpeg-bit-reader-shift-33", "ubsan-jpeg-fill-bytes-bit-reader-shift-33"}) {
    std::ifstream file(std::string(VITLAB_SOURCE_DIR) + "/tests/fuzz/corpus/image/" + name,
                       std::ios::binary);
    const Bytes input((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    REQUIRE(input.size() > 100);
    const Bytes bytes(input.begin() + 1, input.end());
    for (int channels : {0, 1, 3}) {
      std::string refused;
      torch::Tensor image;
      try {
        image = decode_image_bytes(bytes, "cut.jpg", channels);
      } catch (const DataError& e) {
        refused = e.what();
      }
      CHECK((image.defined() ? image.dim() == 3 : refused.find("cut.jpg") != std::string::npos));
    }
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
