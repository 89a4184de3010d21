// Streamed image folders: decoding, timm's crops against hand-computed values, the cached file
// listing, the threaded batch stream (order, resume, rank shares) and the bad-file policy.
#include <stb/stb_image_write.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <tuple>
#include <vector>

#include "core/cpu_runtime.h"
#include "data/batcher.h"
#include "data/crop_transforms.h"
#include "data/file_bytes.h"
#include "data/file_listing.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/jpeg_region.h"
#include "data/stream_loader.h"
#include "test_helpers.h"

using namespace vitlab;
using vitlab::test::require_data_error;
using vitlab::test::TempDir;
namespace fs = std::filesystem;

namespace {

// (H, W, C) uint8 filled with one value per channel.
torch::Tensor solid(int64_t h, int64_t w, std::vector<int64_t> values) {
  auto t = torch::empty({h, w, int64_t(values.size())}, torch::kUInt8);
  for (size_t c = 0; c < values.size(); ++c) t.select(2, int64_t(c)).fill_(values[c]);
  return t;
}

// An 8x8 RGB PNG whose pixels encode `id`: (x, y, c) = id * 16 + 4 c + x + y.
void write_id_png(const fs::path& path, int id) {
  fs::create_directories(path.parent_path());
  std::vector<uint8_t> px;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      for (int c = 0; c < 3; ++c) px.push_back(static_cast<uint8_t>(id * 16 + 4 * c + x + y));
  REQUIRE(stbi_write_png(path.string().c_str(), 8, 8, 3, px.data(), 8 * 3) != 0);
}

// train/ and test/ with `n` PNGs in classes "a" (even ids) and "b" (odd ids).
void write_folder(const fs::path& root, int n) {
  for (int i = 0; i < n; ++i)
    write_id_png(root / "train" / (i % 2 ? "b" : "a") / ("img" + std::to_string(10 + i) + ".png"),
                 i);
  write_id_png(root / "test/a/t.png", 0);
}

std::vector<Batch> all_batches(BatchStream& stream, int64_t first = 0) {
  std::vector<Batch> out;
  for (int64_t i = first; i < stream.size(); ++i) out.push_back(stream.next());
  return out;
}

}  // namespace

TEST_CASE("decode_rgb: JPEG colour, greyscale and CMYK to RGB, PNG, DCT downscaling, bad bytes",
          "[data][streaming]") {
  TempDir tmp;
  if (!have_turbojpeg()) {
    WARN("built without TurboJPEG: the JPEG cases are left out");
  } else {
    const auto rgb = decode_rgb(encode_jpeg(solid(48, 64, {200, 100, 50}), 95), "rgb.jpg", 0);
    CHECK(rgb.hwc.sizes() == torch::IntArrayRef({48, 64, 3}));
    CHECK((rgb.hwc.to(torch::kInt) - torch::tensor({200, 100, 50}, torch::kInt))
              .abs()
              .max()
              .item<int>() <= 3);
    const auto grey = decode_rgb(encode_jpeg(solid(16, 16, {120}), 95), "grey.jpg", 0).hwc;
    CHECK(grey.select(2, 0).equal(grey.select(2, 2)));
    CHECK(std::abs(grey.to(torch::kFloat).mean().item<float>() - 120.f) < 2.f);
    // Inverted CMYK as Adobe stores it: C 255, M 128, Y 255, K 255 -> R 255, G 128, B 255.
    const auto cmyk =
        decode_rgb(encode_jpeg(solid(16, 16, {255, 128, 255, 255}), 95), "cmyk.jpg", 0).hwc;
    CHECK((cmyk.to(torch::kInt) - torch::tensor({255, 128, 255}, torch::kInt))
              .abs()
              .max()
              .item<int>() <= 4);
    // 512x384 for a side of at least 100: 3/8 (192x144) is the smallest of TurboJPEG's eighths
    // that keeps both sides >= 100 (1/4 gives 96).
    const auto big = decode_rgb(encode_jpeg(solid(384, 512, {10, 20, 30}), 90), "big.jpg", 100);
    CHECK(big.hwc.sizes() == torch::IntArrayRef({144, 192, 3}));
    CHECK(big.file_height == 384);
    CHECK(big.file_width == 512);
    auto bytes = encode_jpeg(solid(64, 64, {1, 2, 3}), 90);
    bytes.resize(bytes.size() / 2);
    require_data_error([&] { decode_rgb(bytes, "half.jpg", 0); }, {"half.jpg", "JPEG"});
  }
  write_id_png(tmp.path() / "a.png", 3);
  const auto png = decode_rgb(read_data_file(tmp.file("a.png")), "a.png", 0).hwc;
  CHECK(png[2][5][1].item<int>() == 3 * 16 + 4 + 5 + 2);  // (y 2, x 5, c 1)
  require_data_error([&] { decode_rgb({}, "empty.jpg", 0); }, {"empty.jpg", "empty"});
  require_data_error(
      [&] {
        decode_rgb({'G', 'I', 'F', '8'}, "x.gif", 0);
      },
      {"x.gif", "not a JPEG or PNG"});
  require_data_error([&] { decode_rgb({0xFF, 0xD8, 0xFF, 0, 1, 2}, "junk.jpg", 0); }, {"junk.jpg"});
  require_data_error([&] { image_size_of({0xFF, 0xD8, 0xFF, 1, 2}, "tiny.jpg"); }, {"tiny.jpg"});
}

TEST_CASE("decode_rgb_box: a JPEG crop decoded alone has the whole image's pixels",
          "[data][streaming]") {
  if (!have_turbojpeg()) return;
  torch::manual_seed(3);
  // Noise (every coefficient busy), 4:2:0 colour with odd sizes, greyscale, CMYK (4:4:4), and a
  // large image that the DCT shrinks.
  const std::vector<std::pair<std::string, torch::Tensor>> images = {
      {"noise.jpg", torch::randint(0, 256, {97, 131, 3}, torch::kUInt8)},
      {"grey.jpg", torch::randint(0, 256, {40, 57, 1}, torch::kUInt8)},
      {"cmyk.jpg", torch::randint(0, 256, {45, 38, 4}, torch::kUInt8)},
      {"big.jpg", torch::randint(0, 256, {384, 512, 3}, torch::kUInt8)}};
  std::mt19937_64 rng(4);
  for (const auto& [name, pixels] : images) {
    INFO(name);
    const auto bytes = encode_jpeg(pixels, 90);
    for (int64_t min_side : {0, 100, 200}) {
      const DecodedImage whole = decode_rgb(bytes, name, min_side);
      bool smaller = false;
      for (int k = 0; k < 40; ++k) {
        const CropBox box =
            random_resized_crop_box(whole.file_height, whole.file_width, {}, rng);
        const DecodedImage part = decode_rgb_box(bytes, name, box, min_side);
        const CropBox at =
            scale_box(box, whole.file_height, whole.file_width, whole.hwc.size(0), whole.hwc.size(1));
        INFO("min_side " << min_side << " box " << box.top << "," << box.left << " " << box.height
                         << "x" << box.width);
        REQUIRE(part.box.height == at.height);
        REQUIRE(part.box.width == at.width);
        CHECK(part.file_height == whole.file_height);
        const auto want = whole.hwc.narrow(0, at.top, at.height).narrow(1, at.left, at.width);
        const auto got =
            part.hwc.narrow(0, part.box.top, at.height).narrow(1, part.box.left, at.width);
        REQUIRE(torch::equal(got, want));
        smaller |= part.hwc.numel() < whole.hwc.numel();
      }
      if (have_jpeg_regions()) CHECK(smaller);  // only the crop's part was decoded
    }
  }
  // A file cut short is refused whatever the crop: without its end marker it is decoded whole.
  auto bytes = encode_jpeg(torch::randint(0, 256, {64, 64, 3}, torch::kUInt8), 90);
  bytes.resize(bytes.size() * 3 / 4);
  require_data_error([&] { decode_rgb_box(bytes, "cut.jpg", {0, 0, 8, 8}, 0); },
                     {"cut.jpg", "Premature end"});
}

TEST_CASE("timm's crops against hand-computed boxes and pixels", "[data][streaming]") {
  // Eval: 500x375 for 224 at crop_pct 0.875: shorter side to floor(224 / 0.875) = 256, the
  // longer to int(256 * 500 / 375) = 341; offsets round(16) = 16 and round(58.5) = 58 (to even).
  // In the original image (375 / 256 px per resized px): top 23.4 -> 23, left 85.0 -> 85, side
  // 328.1 -> 328.
  const CropBox eval = center_crop_box(375, 500, 224, 0.875);
  CHECK(eval.top == 23);
  CHECK(eval.left == 85);
  CHECK(eval.height == 328);
  CHECK(eval.width == 328);
  const CropBox whole = center_crop_box(8, 8, 8, 1.0);
  CHECK((whole.top == 0 && whole.left == 0 && whole.height == 8 && whole.width == 8));

  // RandomResizedCrop on a 10x1000 strip: no box of >= 8% of the area at ratio <= 4/3 fits in
  // 10 rows, so the fallback: full height, width round(10 * 4/3) = 13, centred at (1000-13)/2.
  std::mt19937_64 rng(1);
  const CropBox strip = random_resized_crop_box(10, 1000, {}, rng);
  CHECK((strip.top == 0 && strip.left == 493 && strip.height == 10 && strip.width == 13));
  std::mt19937_64 a(7), b(7);
  for (int i = 0; i < 500; ++i) {
    const CropBox box = random_resized_crop_box(300, 400, {}, a);
    const CropBox again = random_resized_crop_box(300, 400, {}, b);
    REQUIRE((box.top == again.top && box.left == again.left && box.height == again.height));
    REQUIRE(box.top + box.height <= 300);
    REQUIRE(box.left + box.width <= 400);
    const double fraction = double(box.height * box.width) / (300.0 * 400.0);
    REQUIRE(fraction >= 0.07);
    const double ratio = double(box.width) / double(box.height);
    REQUIRE((ratio > 0.7 && ratio < 1.4));
  }

  // A 4x4 ramp x[i][j] = 10 i + 20 j shrunk to 2x2 with antialiasing: the triangle filter of
  // width 2 gives rows 0-2 weights 3/7, 3/7, 1/7 for output 0 and rows 1-3 1/7, 3/7, 3/7 for
  // output 1 (at the border the weights are renormalised), the same along columns. Output (0, 0)
  // = 50/7 + 100/7 = 21.4 -> 21; (0, 1) = 50/7 + 320/7 -> 53; (1, 0) = 160/7 + 100/7 -> 37;
  // (1, 1) = 160/7 + 320/7 -> 69.
  auto ramp = torch::empty({4, 4, 3}, torch::kUInt8);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) ramp[i][j].fill_(10 * i + 20 * j);
  const auto small = crop_resize(ramp, {0, 0, 4, 4}, 2, 2);  // (3, 2, 2)
  CHECK(small[0].equal(torch::tensor({21, 53, 37, 69}, torch::kUInt8).view({2, 2})));
  CHECK(small[2].equal(small[0]));
  // Same size: the crop itself, channels first; flipped: columns reversed.
  const auto crop = crop_resize(ramp, {1, 2, 2, 2}, 2, 2);
  CHECK(crop[1].equal(torch::tensor({50, 70, 60, 80}, torch::kUInt8).view({2, 2})));
  const auto flipped = crop_resize(ramp, {1, 2, 2, 2}, 2, 2, /*flip=*/true);
  CHECK(flipped[1].equal(torch::tensor({70, 50, 80, 60}, torch::kUInt8).view({2, 2})));
}

TEST_CASE("decode_threads 0 is this process's share of the cores", "[data][streaming]") {
  StreamOptions o;
  o.threads = 0;
  CHECK(o.thread_count() == available_cores());
  o.processes_sharing_cores = 2;  // two ranks on this machine
  CHECK(o.thread_count() == std::max(1, available_cores() / 2));
  o.processes_sharing_cores = 4 * available_cores();  // more ranks than cores: one thread each
  CHECK(o.thread_count() == 1);
  o.threads = 5;  // an explicit count wins
  CHECK(o.thread_count() == 5);
}

TEST_CASE("crop_resize equals ATen's antialiased bilinear interpolate, shrinking and enlarging",
          "[data][streaming]") {
  // crop_resize runs its own loops (per image, in every decoding thread); ATen's
  // F::interpolate(bilinear, antialias=true) is the reference. The float sums differ in the last
  // bit (ATen resizes along the rows first, with fused multiply-adds where built for AVX2), so a
  // value within a hair of .5 can round the other way: by 1, rarely.
  namespace F = torch::nn::functional;
  torch::manual_seed(3);
  const auto image = torch::randint(0, 256, {61, 47, 3}, torch::kUInt8);  // (H, W, 3)
  for (const auto& [box, oh, ow] :
       std::vector<std::tuple<CropBox, int64_t, int64_t>>{{{0, 0, 61, 47}, 16, 16},
                                                          {{5, 3, 40, 30}, 24, 17},
                                                          {{10, 2, 9, 13}, 32, 20},
                                                          {{0, 0, 61, 47}, 61, 20},
                                                          {{1, 1, 7, 7}, 7, 7}}) {
    INFO(box.top << "," << box.left << " " << box.height << "x" << box.width << " -> " << oh
                 << "x" << ow);
    const auto crop = image.narrow(0, box.top, box.height).narrow(1, box.left, box.width);
    auto ref = F::interpolate(crop.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat),
                              F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{oh, ow})
                                  .mode(torch::kBilinear)
                                  .align_corners(false)
                                  .antialias(true));
    const auto expected = ref.squeeze(0).round().clamp(0, 255).to(torch::kUInt8);  // (3, oh, ow)
    const auto ours = crop_resize(image, box, oh, ow);
    const auto diff = (ours.to(torch::kInt) - expected.to(torch::kInt)).abs();  // (3, oh, ow)
    CHECK(diff.max().item<int>() <= 1);
    CHECK(diff.sum().item<int>() <= std::max<int64_t>(1, diff.numel() / 500));
    CHECK(crop_resize(image, box, oh, ow, /*flip=*/true).equal(ours.flip({2})));
  }
}

TEST_CASE("file listing: sorted classes and files, a cache that round-trips, clear errors",
          "[data][streaming]") {
  TempDir tmp;
  write_folder(tmp.path(), 5);
  fs::create_directories(tmp.path() / "train/c");  // an empty class folder
  int64_t reported = 0;
  const FileListing l =
      list_image_split(tmp.path().string(), "train", nullptr, [&](int64_t n) { reported = n; });
  CHECK(l.class_names == std::vector<std::string>{"a", "b", "c"});
  CHECK(l.files == std::vector<std::string>{"train/a/img10.png", "train/a/img12.png",
                                            "train/a/img14.png", "train/b/img11.png",
                                            "train/b/img13.png"});
  CHECK(l.labels == std::vector<int32_t>{0, 0, 0, 1, 1});
  CHECK(l.empty_classes == std::vector<std::string>{"c"});
  CHECK(reported == 5);
  save_listing(l, tmp.file("listing.txt"));
  const FileListing back = load_listing(tmp.file("listing.txt"));
  CHECK((back.root == l.root && back.split == "train" && back.class_names == l.class_names));
  CHECK((back.files == l.files && back.labels == l.labels));

  const FileListing test = list_image_split(tmp.path().string(), "test", &l.class_names);
  CHECK(test.labels == std::vector<int32_t>{0});
  fs::create_directories(tmp.path() / "test/zebra");
  require_data_error([&] { list_image_split(tmp.path().string(), "test", &l.class_names); },
                     {"zebra", "training split"});
  require_data_error([&] { list_image_split(tmp.path().string(), "val", nullptr); },
                     {"val", "folder not found"});
  test::write_text(tmp.file("bad1.txt"), "something else\n");
  require_data_error([&] { load_listing(tmp.file("bad1.txt")); },
                     {"bad1.txt", "not a vitlab file listing"});
  test::write_text(tmp.file("bad2.txt"),
                   "vitlab-file-listing 1\n/r\ntrain\n2\na\nb\n0\tx.png\n7\ty.png\n");
  require_data_error([&] { load_listing(tmp.file("bad2.txt")); }, {"bad2.txt", "line 8"});
  test::write_text(tmp.file("bad3.txt"), "vitlab-file-listing 1\n/r\ntrain\n3\na\n");
  require_data_error([&] { load_listing(tmp.file("bad3.txt")); }, {"bad3.txt", "class names"});
}

TEST_CASE(
    "batch stream: the in-memory batches without augmentation, at any thread count, resumed and "
    "per rank",
    "[data][streaming]") {
  TempDir tmp;
  write_folder(tmp.path(), 10);
  const FileListing files = list_image_split(tmp.path().string(), "train", nullptr);
  const Dataset memory = read_image_folder(tmp.path().string()).train;  // the same sorted order
  const uint64_t seed = 5;
  const int64_t epoch = 2;
  EpochBatches reference(DeviceDataset(memory, torch::kCPU), 4, /*shuffle=*/true,
                         /*drop_last=*/false, seed, epoch);
  const auto order = epoch_permutation_indices(seed, epoch, files.size());
  StreamOptions plain;
  plain.image_size = 8;
  plain.random_crop = false;
  plain.crop_pct = 1.0;
  for (int threads : {1, 3, 5}) {  // 5: more threads than a batch has images
    plain.threads = threads;
    plain.queue_batches = 1;
    BatchStream stream(files, whole_plan(order), 4, false, 0, seed, plain, torch::kCPU, nullptr);
    REQUIRE(stream.size() == 3);
    for (int64_t i = 0; i < 3; ++i) {
      const Batch want = reference.batch(i), got = stream.next();
      INFO("threads " << threads << ", batch " << i);
      CHECK(got.images.equal(want.images));
      CHECK(got.labels.equal(want.labels));
    }
  }

  StreamOptions augmented;
  augmented.image_size = 6;
  augmented.threads = 1;
  BatchStream one(files, whole_plan(order), 4, true, 0, seed, augmented, torch::kCPU, nullptr);
  const auto serial = all_batches(one);
  augmented.threads = 3;
  BatchStream three(files, whole_plan(order), 4, true, 0, seed, augmented, torch::kCPU, nullptr);
  const auto parallel = all_batches(three);
  BatchStream resumed(files, whole_plan(order), 4, true, 1, seed, augmented, torch::kCPU, nullptr);
  const auto rest = all_batches(resumed, 1);
  REQUIRE((serial.size() == 2 && parallel.size() == 2 && rest.size() == 1));
  CHECK(!serial[0].images.equal(
      reference.batch(0).images.narrow(2, 0, 6).narrow(3, 0, 6)));  // augmented
  for (size_t i = 0; i < 2; ++i) CHECK(parallel[i].images.equal(serial[i].images));
  CHECK(rest[0].images.equal(serial[1].images));
  for (int rank = 0; rank < 2; ++rank) {  // each rank's share: its rows of every global batch
    BatchStream share(files, rank_plan(order, 4, rank, 2), 2, true, 0, seed, augmented, torch::kCPU,
                      nullptr);
    const auto mine = all_batches(share);
    REQUIRE(mine.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(mine[i].images.equal(serial[i].images.narrow(0, rank * 2, 2)));
      CHECK(mine[i].labels.equal(serial[i].labels.narrow(0, rank * 2, 2)));
    }
  }
}

TEST_CASE("bad images are skipped, counted and named under skip, and stop the stream under error",
          "[data][streaming]") {
  TempDir tmp;
  write_folder(tmp.path(), 4);                           // a: img10 img12, b: img11 img13
  test::write_text(tmp.file("train/a/img10b.jpg"), "");  // empty
  test::write_bytes(tmp.file("train/a/img11x.jpg"), {0xFF, 0xD8, 0xFF, 1, 2});  // corrupt
  test::write_text(tmp.file("train/b/img11a.png"), "not a png at all");         // wrong content
  const FileListing files = list_image_split(tmp.path().string(), "train", nullptr);
  REQUIRE(files.size() == 7);  // a: img10 img10b img11x img12, b: img11 img11a img13
  std::vector<int64_t> order(7);
  std::iota(order.begin(), order.end(), 0);
  StreamOptions options;
  options.image_size = 8;
  options.random_crop = false;
  options.crop_pct = 1.0;
  options.threads = 2;
  std::vector<std::string> warnings;
  std::mutex m;
  BadImageLog log([&](const std::string& w) {
    std::lock_guard<std::mutex> lock(m);
    warnings.push_back(w);
  });
  BatchStream stream(files, whole_plan(order), 7, false, 0, 0, options, torch::kCPU, &log);
  const Batch b = stream.next();
  CHECK(log.count() == 3);
  REQUIRE(warnings.size() == 3);
  for (const char* name : {"img10b.jpg", "img11x.jpg", "img11a.png"}) {
    const bool named = std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) {
      return w.find(name) != std::string::npos;
    });
    CHECK(named);
  }
  // Slots of bad files are filled by the next good file of the listing: img10b and img11x by
  // img12 (file 3), img11a by img13 (file 6).
  CHECK(b.indices.equal(torch::tensor({0, 3, 3, 3, 4, 6, 6}, torch::kInt64)));
  CHECK(b.labels.equal(torch::tensor({0, 0, 0, 0, 1, 1, 1}, torch::kInt64)));

  options.skip_bad_images = false;
  BatchStream strict(files, whole_plan(order), 7, false, 0, 0, options, torch::kCPU, nullptr);
  require_data_error([&] { strict.next(); }, {"img10b.jpg", "data.on_bad_image"});
}

TEST_CASE(
    "vitlab data synth writes an ImageNet-shaped JPEG folder and vitlab data bench streams it",
    "[data][streaming][cli]") {
  if (!have_turbojpeg()) {
    WARN("built without TurboJPEG: vitlab data synth is not available");
    return;
  }
  TempDir tmp;
  const std::string out = tmp.file("synth");
  auto r = test::run_vitlab("data synth " + out +
                            " --images 40 --classes 4 --val-fraction 0.2 --threads 2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("32 training and 8 validation JPEGs in 4 classes") != std::string::npos);
  const FileListing train = list_image_split(out, "train", nullptr);
  CHECK(train.class_names ==
        std::vector<std::string>{"class_000", "class_001", "class_002", "class_003"});
  CHECK(train.size() == 32);
  const auto image = decode_rgb(read_data_file(train.path(0)), train.path(0), 0);
  CHECK((image.file_height >= 300 && image.file_height <= 450 && image.file_width >= 400));

  r = test::run_vitlab("data bench " + out +
                       " --batch 8 --batches 3 --image-size 32 --threads 2 --json " +
                       tmp.file("bench.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json record = Json::parse(test::read_text(tmp.file("bench.json")));
  CHECK(record.at("images").get<int64_t>() == 24);
  CHECK(record.at("files").get<int64_t>() == 32);
  CHECK(record.at("bad_images").get<int64_t>() == 0);
  CHECK(record.at("images_per_second").get<double>() > 0);

  r = test::run_vitlab("data synth " + out + " --images 8 --classes 2");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("not an empty folder") != std::string::npos);
  r = test::run_vitlab("data bench " + tmp.file("nowhere"));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("nowhere/train: image-folder split folder not found") != std::string::npos);
  r = test::run_vitlab("data synth " + tmp.file("q") + " --quality 0");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--quality") != std::string::npos);
}

TEST_CASE("batch stream on the GPU: the CPU's batches through reused pinned buffers, errors and an "
          "early stop",
          "[cuda][streaming]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA, 0);
  TempDir tmp;
  write_folder(tmp.path(), 50);
  const FileListing files = list_image_split(tmp.path().string(), "train", nullptr);
  const auto order = epoch_permutation_indices(9, 0, files.size());
  StreamOptions o;
  o.image_size = 6;
  o.threads = 3;
  o.queue_batches = 2;  // 2 + 3 buffers for 13 batches: each is refilled after its copy
  BatchStream cpu(files, whole_plan(order), 4, /*drop_last=*/false, 0, 9, o, torch::kCPU, nullptr);
  BatchStream cuda(files, whole_plan(order), 4, /*drop_last=*/false, 0, 9, o, gpu, nullptr);
  REQUIRE(cuda.size() == 13);  // the last batch short: 2 images
  std::vector<Batch> got;
  for (int64_t i = 0; i < cuda.size(); ++i) got.push_back(cuda.next());  // held, as a step would
  for (int64_t i = 0; i < cpu.size(); ++i) {
    INFO("batch " << i);
    const Batch want = cpu.next();
    CHECK(got[i].images.device() == gpu);
    CHECK(got[i].images.cpu().equal(want.images));
    CHECK(got[i].labels.cpu().equal(want.labels));
    CHECK(got[i].indices.equal(want.indices));
  }
  {  // stopped after two batches, with the others decoding or waiting for a buffer
    BatchStream early(files, whole_plan(order), 4, false, 0, 9, o, gpu, nullptr);
    early.next();
    early.next();
  }
  // A bad file under "error": the error comes through next(), and the stream still closes.
  test::write_text(tmp.file("train/a/img99.png"), "not a png");
  const FileListing with_bad = list_image_split(tmp.path().string(), "train", nullptr);
  o.skip_bad_images = false;
  std::vector<int64_t> all(with_bad.size());
  std::iota(all.begin(), all.end(), 0);
  BatchStream strict(with_bad, whole_plan(all), 4, false, 0, 0, o, gpu, nullptr);
  bool failed = false;
  for (int64_t i = 0; i < strict.size() && !failed; ++i) {
    try {
      strict.next();
    } catch (const DataError& e) {
      failed = std::string(e.what()).find("img99.png") != std::string::npos;
    }
  }
  CHECK(failed);
}
