// WebDataset shards as a split (data/tar_shards.h): archives written by GNU tar (ustar, GNU long
// names, pax) listed into the samples a folder of the same images gives, a listing that
// round-trips, runs that train as the folder's do, and clear errors for broken shards.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/file_listing.h"
#include "data/tar_shards.h"
#include "test_helpers.h"

using namespace vitlab;
using vitlab::test::TempDir;
namespace fs = std::filesystem;

namespace {

// Runs GNU tar in `dir` (the archive's members in the order given): a reference writer.
void tar(const std::string& dir, const std::string& archive, const std::string& members,
         const std::string& format = "ustar") {
  const std::string command = "cd '" + dir + "' && tar --format=" + format + " -cf '" + archive +
                              "' " + members + " 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
}

// The PNG split `split` of test::write_png_split (classes a and b) as two shards, one per class,
// each sample an image "<class>_<name>.png" and its class index "<class>_<name>.cls".
void write_shards(const std::string& folder, const std::string& shards, const std::string& split) {
  fs::create_directories(fs::path(shards) / split);
  const std::string staging = shards + "/staging-" + split;
  fs::create_directories(staging);
  int label = 0;
  for (const char* cls : {"a", "b"}) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(fs::path(folder) / split / cls)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    std::string members;
    for (const auto& name : names) {
      const std::string key = std::string(cls) + "_" + fs::path(name).stem().string();
      fs::copy_file(fs::path(folder) / split / cls / name, fs::path(staging) / (key + ".png"));
      test::write_text(staging + "/" + key + ".cls", std::to_string(label) + "\n");
      members += key + ".png " + key + ".cls ";
    }
    tar(staging, fs::absolute(fs::path(shards) / split / (std::string("part-00") + std::to_string(label) + ".tar")).string(), members);
    ++label;
  }
  fs::remove_all(staging);
}

Json shard_run(const std::string& root, const std::string& streaming) {
  Json c = test::tiny_base(2);
  c["model"] = test::tiny_folder_model();
  c["data"] = {{"dataset", "image-folder"}, {"path", root},    {"image_size", 8},
               {"streaming", streaming},    {"crop_pct", 1.0}, {"mean", {0.5, 0.5, 0.5}},
               {"std", {0.25, 0.25, 0.25}}, {"augment", {{"flip", true}, {"random_erasing", 0.25}}}};
  c["train"]["batch_size"] = 8;
  return c;
}

test::CommandResult train(const TempDir& tmp, const Json& config, const std::string& name) {
  test::write_text(tmp.file(name + ".json"), config.dump());
  return test::run_vitlab("train " + tmp.file(name + ".json") + " --out " + tmp.file(name) + " --quiet");
}

}  // namespace

TEST_CASE("WebDataset shards list as the samples of the same folder, and the listing round-trips",
          "[data][shards]") {
  TempDir tmp;
  const std::string folder = tmp.file("folder"), shards = tmp.file("shards");
  test::write_png_split(folder, "train", 6);
  write_shards(folder, shards, "train");
  const FileListing images = list_image_split(folder, "train", nullptr);
  const FileListing samples = list_image_split(shards, "train", nullptr);
  REQUIRE(samples.size() == 12);
  CHECK(samples.sharded());
  CHECK(samples.class_names == std::vector<std::string>{"0", "1"});
  CHECK(samples.labels == images.labels);
  CHECK(samples.files.front() == "train/part-000.tar");
  CHECK(samples.members.front() == "a_img0.png");
  CHECK(samples.path(7) == shards + "/train/part-001.tar:b_img1.png");
  for (int64_t i = 0; i < samples.size(); ++i) {
    INFO(samples.path(i));
    CHECK(samples.read(i, 1 << 20) == images.read(i, 1 << 20));  // the same PNG bytes
  }
  // scripts/folder_to_shards.py writes the folder's samples in its listing order.
  const std::string converted = tmp.file("converted");
  const std::string command = "python3 " + std::string(VITLAB_SOURCE_DIR) + "/scripts/folder_to_shards.py " +
                              folder + " " + converted + " --per-shard 5 > /dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  const FileListing written = list_image_split(converted, "train", nullptr);
  REQUIRE(written.size() == 12);
  CHECK(written.labels == images.labels);
  CHECK(written.files.back() == "train/part-000002.tar");
  CHECK(written.members.front() == "a_img0.png");
  for (int64_t i = 0; i < written.size(); ++i) CHECK(written.read(i, 1 << 20) == images.read(i, 1 << 20));
  int calls = 0;
  list_image_split(shards, "train", nullptr, [&](int64_t n) { calls += n == 12; });
  CHECK(calls == 1);

  save_listing(samples, tmp.file("listing.txt"));
  CHECK(test::read_text(tmp.file("listing.txt")).rfind("vitlab-file-listing 2\n", 0) == 0);
  const FileListing back = load_listing(tmp.file("listing.txt"));
  CHECK(back.files == samples.files);
  CHECK(back.members == samples.members);
  CHECK(back.offsets == samples.offsets);
  CHECK(back.sizes == samples.sizes);
  CHECK(back.labels == samples.labels);
  test::write_text(tmp.file("bad.txt"), "vitlab-file-listing 2\n/r\ntrain\n1\nx\n0\ttrain/s.tar\tk.png\n");
  test::require_data_error([&] { load_listing(tmp.file("bad.txt")); }, {"bad.txt", "line 6", "<offset>"});

  // GNU long names (over 100 bytes) and pax path records name the members as written.
  const std::string long_key = "k" + std::string(120, 'x');
  fs::create_directories(tmp.file("long/train"));
  for (const char* format : {"gnu", "pax"}) {
    const std::string dir = tmp.file(std::string("stage-") + format);
    fs::create_directories(dir);
    fs::copy_file(fs::path(folder) / "train/a/img0.png", fs::path(dir) / (long_key + ".png"));
    test::write_text(dir + "/" + long_key + ".cls", "3");
    tar(dir, tmp.file(std::string("long/train/") + format + ".tar"), long_key + ".png " + long_key + ".cls", format);
  }
  // A field named by the last part of its extension, as WebDataset's decoders read it.
  const std::string dotted = tmp.file("stage-dotted");
  fs::create_directories(dotted);
  fs::copy_file(fs::path(folder) / "train/a/img0.png", fs::path(dotted) / "c.left.png");
  test::write_text(dotted + "/c.cls", "3");
  tar(dotted, tmp.file("long/train/zz-dotted.tar"), "c.left.png c.cls");
  const FileListing long_names = list_image_split(tmp.file("long"), "train", nullptr);
  REQUIRE(long_names.size() == 3);
  CHECK(long_names.members ==
        std::vector<std::string>{long_key + ".png", long_key + ".png", "c.left.png"});
  CHECK(long_names.labels == std::vector<int32_t>{3, 3, 3});
  CHECK(long_names.class_names.size() == 4);
  CHECK(long_names.read(1, 1 << 20) == images.read(0, 1 << 20));
}

TEST_CASE("a run from WebDataset shards trains as the run from the same folder", "[shards][train]") {
  TempDir tmp;
  const std::string folder = tmp.file("folder"), shards = tmp.file("shards");
  test::write_png_split(folder, "train", 8);
  test::write_png_split(folder, "test", 2);
  write_shards(folder, shards, "train");
  write_shards(folder, shards, "test");
  for (const char* streaming : {"on", "off"}) {
    INFO(streaming);
    const auto a = train(tmp, shard_run(folder, streaming), std::string("folder-") + streaming);
    const auto b = train(tmp, shard_run(shards, streaming), std::string("shards-") + streaming);
    INFO(a.output << b.output);
    REQUIRE(a.exit_code == 0);
    REQUIRE(b.exit_code == 0);
    const Json ra = Json::parse(test::read_text(tmp.file(std::string("folder-") + streaming + "/result.json")));
    const Json rb = Json::parse(test::read_text(tmp.file(std::string("shards-") + streaming + "/result.json")));
    CHECK(rb.at("test_images") == 4);
    CHECK(rb.at("test_loss").get<double>() == Approx(ra.at("test_loss").get<double>()).epsilon(1e-6));
    CHECK(rb.at("test_accuracy") == ra.at("test_accuracy"));
  }
  // The streamed run keeps the shard listing, and a resume reads it back.
  CHECK(test::read_text(tmp.file("shards-on/listing-train.txt")).rfind("vitlab-file-listing 2\n", 0) == 0);
}

TEST_CASE("broken shards stop a run with exit 2 naming the shard and the sample", "[shards][train]") {
  TempDir tmp;
  const std::string folder = tmp.file("folder");
  test::write_png_split(folder, "train", 2);
  test::write_png_split(folder, "test", 1);
  const auto fails = [&](const std::string& shards, const std::vector<std::string>& words) {
    const auto r = train(tmp, shard_run(shards, "on"), "run-" + fs::path(shards).filename().string());
    INFO(r.output);
    CHECK(r.exit_code == 2);
    for (const auto& w : words) CHECK(r.output.find(w) != std::string::npos);
  };
  const auto fresh = [&](const std::string& name) {
    const std::string shards = tmp.file(name);
    write_shards(folder, shards, "train");
    write_shards(folder, shards, "test");
    return shards;
  };
  // A sample without its class index.
  const std::string unlabelled = fresh("unlabelled");
  const std::string stage = tmp.file("stage");
  fs::create_directories(stage);
  fs::copy_file(fs::path(folder) / "train/a/img0.png", fs::path(stage) / "lost.png");
  tar(stage, unlabelled + "/train/part-002.tar", "lost.png");
  fails(unlabelled, {"part-002.tar", "\"lost\"", ".cls"});
  // A label that is not a number.
  const std::string worded = fresh("worded");
  test::write_text(stage + "/lost.cls", "cat");
  tar(stage, worded + "/train/part-002.tar", "lost.png lost.cls");
  fails(worded, {"part-002.tar", "lost.cls", "not a class index"});
  // A shard cut short inside a member, and one whose header was overwritten.
  const std::string cut = fresh("cut");
  const auto shard = cut + "/train/part-001.tar";
  fs::resize_file(shard, 700);  // inside the first sample's padding
  fails(cut, {"part-001.tar", "truncated"});
  const std::string cut_between = fresh("cut-between");
  fs::resize_file(cut_between + "/train/part-001.tar", 2048);  // after the first sample
  fails(cut_between, {"part-001.tar", "end-of-archive", "truncated"});
  const std::string corrupt = fresh("corrupt");
  {
    std::fstream f(corrupt + "/test/part-000.tar", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.write("zz", 2);
  }
  fails(corrupt, {"test/part-000.tar", "byte 0", "checksum"});
  // Class folders and shards side by side.
  const std::string mixed = fresh("mixed");
  fs::create_directories(mixed + "/train/a");
  fails(mixed, {mixed + "/train", "both class folders and .tar shards"});
  // A test sample whose class the training shards do not have.
  const std::string beyond = fresh("beyond");
  test::write_text(stage + "/lost.cls", "7");
  tar(stage, beyond + "/test/part-002.tar", "lost.png lost.cls");
  fails(beyond, {"test/part-002.tar", "class 7", "2 classes"});
}
