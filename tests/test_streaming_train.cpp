// Training from a streamed image folder (data.streaming): the same run as in memory when nothing
// is augmented, listings kept in the run folder, "auto" by the memory budget, bad files, and the
// configs streaming refuses.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "data/file_listing.h"
#include "data/streamed_folder.h"
#include "test_helpers.h"

using namespace vitlab;
using vitlab::test::TempDir;
namespace fs = std::filesystem;

namespace {

Json folder_run(const std::string& root, const std::string& streaming) {
  Json c = test::tiny_base(2);
  c["model"] = test::tiny_folder_model();
  c["data"] = {{"dataset", "image-folder"}, {"path", root},    {"image_size", 8},
               {"streaming", streaming},    {"crop_pct", 1.0}, {"mean", {0.5, 0.5, 0.5}},
               {"std", {0.25, 0.25, 0.25}}};
  c["train"]["batch_size"] = 8;
  return c;
}

test::CommandResult train(const TempDir& tmp, const Json& config, const std::string& name) {
  test::write_text(tmp.file(name + ".json"), config.dump());
  return test::run_vitlab("train " + tmp.file(name + ".json") + " --out " + tmp.file(name) +
                          " --quiet");
}

}  // namespace

TEST_CASE("a streamed run trains as the in-memory run of the same folder and keeps its listings",
          "[streaming][train]") {
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 12);
  test::write_png_split(root, "test", 3);
  auto memory = train(tmp, folder_run(root, "off"), "memory");
  INFO(memory.output);
  REQUIRE(memory.exit_code == 0);
  Json streamed_config = folder_run(root, "on");
  streamed_config["data"]["augment"] = {{"flip", true}, {"random_erasing", 0.25}};  // on the device
  Json memory_config = folder_run(root, "off");
  memory_config["data"]["augment"] = streamed_config["data"]["augment"];
  memory = train(tmp, memory_config, "memory_aug");
  REQUIRE(memory.exit_code == 0);
  auto streamed = train(tmp, streamed_config, "streamed_aug");
  INFO(streamed.output);
  REQUIRE(streamed.exit_code == 0);
  const Json a = Json::parse(test::read_text(tmp.file("memory_aug/result.json")));
  const Json b = Json::parse(test::read_text(tmp.file("streamed_aug/result.json")));
  CHECK(b.at("streamed").get<bool>());
  CHECK_FALSE(a.at("streamed").get<bool>());
  // Each epoch says how long its steps waited for the decoders; in-memory epochs do not.
  for (const auto& [dir, streamed] : {std::pair<std::string, bool>{"streamed_aug", true}, {"memory_aug", false}}) {
    std::istringstream lines(test::read_text(tmp.file(dir + "/metrics.jsonl")));
    int epochs = 0;
    for (std::string line; std::getline(lines, line);) {
      const Json e = Json::parse(line);
      if (!e.contains("epoch_seconds")) continue;
      ++epochs;
      INFO(line);
      CHECK(e.contains("data_wait_seconds") == streamed);
      if (streamed) {
        CHECK(e.at("data_wait_seconds").get<double>() >= 0.0);
        CHECK(e.at("data_wait_seconds").get<double>() <= e.at("epoch_seconds").get<double>());
      }
    }
    CHECK(epochs == 2);
  }
  CHECK(b.at("train_images") == 24);
  CHECK(b.at("test_images") == 6);
  CHECK(b.at("bad_images") == 0);
  // The same batches, the same device-side augmentation draws: the same numbers.
  CHECK(b.at("test_loss").get<double>() == Approx(a.at("test_loss").get<double>()).epsilon(1e-6));
  CHECK(b.at("test_accuracy") == a.at("test_accuracy"));
  CHECK(test::read_text(tmp.file("streamed_aug/metrics.jsonl")).size() > 0);
  const auto losses = [&](const std::string& run) {
    std::vector<double> out;
    std::ifstream in(tmp.file(run + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(Json::parse(line).at("train_loss").get<double>());
    return out;
  };
  const auto la = losses("memory_aug"), lb = losses("streamed_aug");
  REQUIRE(la.size() == 2);
  REQUIRE(lb.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(lb[i] == Approx(la[i]).epsilon(1e-6));
  const std::string listing = test::read_text(tmp.file("streamed_aug/listing-train.txt"));
  CHECK(listing.rfind("vitlab-file-listing 1\n", 0) == 0);
  CHECK(listing.find("0\ttrain/a/img0.png") != std::string::npos);
  CHECK(fs::exists(tmp.file("streamed_aug/listing-test.txt")));

  // Not quiet, a line per step: the decoding speed and queue appear in the progress line.
  Json logged = folder_run(root, "on");
  logged["train"]["log_every"] = 1;
  test::write_text(tmp.file("logged.json"), logged.dump());
  const auto talk =
      test::run_vitlab("train " + tmp.file("logged.json") + " --out " + tmp.file("logged"));
  INFO(talk.output);
  CHECK(talk.exit_code == 0);
  CHECK(talk.output.find("batches ready") != std::string::npos);
  CHECK(talk.output.find("decoding ") != std::string::npos);
  CHECK(talk.output.find("listing " + root + "/train: 24 files") != std::string::npos);
  CHECK(talk.output.find("streaming " + root + ": 24 training, 0 validation and 6 test images") !=
        std::string::npos);

  Json tiny_budget = folder_run(root, "auto");
  tiny_budget["data"]["memory_budget_gb"] = 1e-6;  // 30 images of 3x8x8 bytes are over it
  tiny_budget["data"]["augment"] = {{"random_resized_crop", true},
                                    {"rand_augment", "rand-m9-mstd0.5"}};
  const auto automatic = train(tmp, tiny_budget, "auto");
  INFO(automatic.output);
  REQUIRE(automatic.exit_code == 0);
  CHECK(Json::parse(test::read_text(tmp.file("auto/result.json"))).at("streamed").get<bool>());
  Json roomy = folder_run(root, "auto");
  REQUIRE(train(tmp, roomy, "roomy").exit_code == 0);
  CHECK_FALSE(
      Json::parse(test::read_text(tmp.file("roomy/result.json"))).at("streamed").get<bool>());
}

TEST_CASE("a streamed run skips and counts bad files, or stops naming one under on_bad_image error",
          "[streaming][train]") {
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 8);
  test::write_png_split(root, "val", 2);  // no test/: the val split is the test split
  test::write_text(root + "/train/a/broken.jpg", "not a jpeg");
  fs::create_directories(root + "/train/c");  // an empty class folder
  Json config = folder_run(root, "on");
  config["model"]["num_classes"] = 3;
  auto r = train(tmp, config, "skip");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("broken.jpg") != std::string::npos);
  CHECK(r.output.find("train/c: empty class folder") != std::string::npos);
  const std::string log = test::read_text(tmp.file("skip/warnings.log"));
  CHECK(log.find("broken.jpg") != std::string::npos);
  CHECK(log.find("train/c: empty class folder") != std::string::npos);
  const Json result = Json::parse(test::read_text(tmp.file("skip/result.json")));
  CHECK(result.at("bad_images") == 1);
  CHECK(result.at("test_images") == 4);

  config["data"]["on_bad_image"] = "error";
  r = train(tmp, config, "strict");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("train/c: empty class folder") != std::string::npos);
  fs::remove(root + "/train/c");
  config["model"]["num_classes"] = 2;
  r = train(tmp, config, "strict2");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("broken.jpg") != std::string::npos);
  CHECK(r.output.find("on_bad_image") != std::string::npos);
}

TEST_CASE("a streamed run stopped inside an epoch resumes to the uninterrupted run's weights",
          "[streaming][train][interrupt]") {
  // RandomResizedCrop on the decoding threads, flip and erasing on the device: a resume inside an
  // epoch must restart the stream at the next batch with the same files and crops.
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 150);  // 50 steps an epoch at batch 6
  test::write_png_split(root, "test", 5);
  Json config = folder_run(root, "on");
  config["train"]["epochs"] = 3;
  config["train"]["batch_size"] = 6;
  config["data"]["decode_threads"] = 3;
  config["data"]["augment"] = {{"random_resized_crop", true}, {"flip", true}, {"random_erasing", 0.25}};
  test::write_text(tmp.file("whole.json"), config.dump());
  const double whole_s = test::seconds_after_file(
      {"train", tmp.file("whole.json"), "--quiet", "--out", tmp.file("whole")},
      tmp.file("whole/config.json"), tmp.file("whole.log"));

  std::mt19937 rng(20261130);
  int inside_epoch = 0;
  for (int k = 0; k < 4 && inside_epoch == 0; ++k) {
    const std::string out = tmp.file("stopped-" + std::to_string(k));
    const pid_t pid =
        test::spawn_vitlab({"train", tmp.file("whole.json"), "--quiet", "--out", out}, out + ".log");
    REQUIRE(test::wait_for_file(out + "/config.json", 120));
    std::this_thread::sleep_for(std::chrono::duration<double>(
        std::uniform_real_distribution<double>(0.2, 0.6)(rng) * whole_s));
    ::kill(pid, SIGINT);
    const int status = test::wait_exit_status(pid);
    INFO(test::read_text(out + ".log"));
    if (status == 0) continue;  // it finished first
    REQUIRE(status == 128 + SIGINT);
    const Checkpoint at = load_checkpoint(out + "/checkpoints/last.pt");
    REQUIRE(at.epoch_position.is_object());
    inside_epoch += at.epoch_position["step"].get<int64_t>() > 0;
    const auto resumed = test::run_vitlab("train --resume " + out + " --quiet");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::expect_same_weights(tmp.file("whole/checkpoints/last.pt"), out + "/checkpoints/last.pt");
    const Json a = Json::parse(test::read_text(tmp.file("whole/result.json")));
    const Json b = Json::parse(test::read_text(out + "/result.json"));
    CHECK(b.at("status") == "completed");
    CHECK(b.at("test_loss") == a.at("test_loss"));
    CHECK(b.at("test_accuracy") == a.at("test_accuracy"));
  }
  CHECK(inside_epoch >= 1);
}

TEST_CASE("streamed subsets and validation split: the in-memory run's files, listings kept",
          "[streaming][train]") {
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 12);
  test::write_png_split(root, "test", 5);
  const auto with_subsets = [&](const std::string& streaming) {
    Json c = folder_run(root, streaming);
    c["data"]["train_size"] = 18;
    c["data"]["val_size"] = 6;
    c["data"]["test_size"] = 6;
    c["data"]["subset_seed"] = 3;
    return c;
  };
  const auto memory = train(tmp, with_subsets("off"), "memory");
  INFO(memory.output);
  REQUIRE(memory.exit_code == 0);
  Json over_budget = with_subsets("auto");  // "auto" streams it: the budget is too small
  over_budget["data"]["memory_budget_gb"] = 1e-6;
  const auto streamed = train(tmp, over_budget, "streamed");
  INFO(streamed.output);
  REQUIRE(streamed.exit_code == 0);
  const Json a = Json::parse(test::read_text(tmp.file("memory/result.json")));
  const Json b = Json::parse(test::read_text(tmp.file("streamed/result.json")));
  CHECK(b.at("streamed").get<bool>());
  for (const char* key : {"train_images", "val_images", "test_images"}) {
    INFO(key);
    CHECK(b.at(key) == a.at(key));
  }
  CHECK(b.at("train_images") == 12);
  CHECK(b.at("val_images") == 6);
  CHECK(b.at("test_images") == 6);
  CHECK(b.at("test_loss").get<double>() == Approx(a.at("test_loss").get<double>()).epsilon(1e-5));
  CHECK(b.at("test_accuracy") == a.at("test_accuracy"));
  // Every epoch's validation numbers: the same held-out files.
  const auto val_losses = [&](const std::string& dir) {
    std::vector<double> out;
    std::istringstream lines(test::read_text(tmp.file(dir + "/metrics.jsonl")));
    for (std::string line; std::getline(lines, line);) {
      const Json e = Json::parse(line);
      if (e.contains("val_loss")) out.push_back(e.at("val_loss").get<double>());
    }
    return out;
  };
  const auto va = val_losses("memory"), vb = val_losses("streamed");
  REQUIRE(va.size() == 2);
  REQUIRE(vb.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(vb[i] == Approx(va[i]).epsilon(1e-5));
  // The parts are kept in the run folder, the training part last (a resume reads them).
  const FileListing val = load_listing(tmp.file("streamed/listing-val.txt"));
  const FileListing part = load_listing(tmp.file("streamed/listing-train.txt"));
  CHECK(val.size() == 6);
  CHECK(part.size() == 12);
  CHECK(load_listing(tmp.file("streamed/listing-test.txt")).size() == 6);
  for (const auto& f : val.files)
    CHECK(std::find(part.files.begin(), part.files.end(), f) == part.files.end());
  // Read back from the run folder as a resume does: the same parts, not subset again.
  DataConfig d;
  d.dataset = DatasetKind::kImageFolder;
  d.path = root;
  d.train_size = 18;
  d.val_size = 6;
  d.test_size = 6;
  d.subset_seed = 3;
  const StreamedFolder again = list_streamed_folder(d, tmp.file("streamed"));
  CHECK(again.train.files == part.files);
  CHECK(again.val.files == val.files);
  CHECK(again.test.size() == 6);
  // vitlab eval of the streamed checkpoint: the run's test numbers, and its last validation loss.
  const std::string checkpoint = tmp.file("streamed/checkpoints/last.pt");
  const auto on_test = test::run_vitlab("eval " + checkpoint + " --device cpu");
  INFO(on_test.output);
  REQUIRE(on_test.exit_code == 0);
  const Json t = Json::parse(on_test.output);
  CHECK(t.at("streamed").get<bool>());
  CHECK(t.at("images") == 6);
  CHECK(t.at("accuracy") == b.at("test_accuracy"));
  CHECK(t.at("loss").get<double>() == Approx(b.at("test_loss").get<double>()).epsilon(1e-5));
  const auto on_val = test::run_vitlab("eval " + checkpoint + " --split val --device cpu");
  REQUIRE(on_val.exit_code == 0);
  const Json v = Json::parse(on_val.output);
  CHECK(v.at("images") == 6);
  CHECK(v.at("loss").get<double>() == Approx(vb.back()).epsilon(1e-5));
  // Few-shot draws from the training part's listing (the 18 drawn less the 6 held out for
  // validation), scored on the test part.
  const auto fewshot = test::run_vitlab("eval " + checkpoint + " --fewshot 1 --device cpu");
  INFO(fewshot.output);
  CHECK(fewshot.exit_code == 0);
  CHECK(fewshot.output.find("\"train_images\": 12") != std::string::npos);
  CHECK(fewshot.output.find("few-shot 1-shot") != std::string::npos);
  // A run folder that lost its validation listing is refused by name, not drawn again.
  fs::remove(tmp.file("streamed/listing-val.txt"));
  const auto lost = test::run_vitlab("eval " + checkpoint + " --split val --device cpu");
  INFO(lost.output);
  CHECK(lost.exit_code == 2);
  CHECK(lost.output.find("listing-val.txt: missing") != std::string::npos);
  CHECK(lost.output.find("data.val_size is 6") != std::string::npos);
}

TEST_CASE("masked patches and few-shot and the attention figures of a streamed folder: the in-memory numbers",
          "[streaming][train]") {
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 12);
  test::write_png_split(root, "test", 3);
  const auto result = [&](const std::string& run) {
    return Json::parse(test::read_text(tmp.file(run + "/result.json")));
  };
  const auto both = [&](Json config, const std::string& name) {  // in memory, then streamed
    for (const char* streaming : {"off", "on"}) {
      config["data"]["streaming"] = streaming;
      const auto r = train(tmp, config, name + "_" + streaming);
      INFO(r.output);
      REQUIRE(r.exit_code == 0);
    }
    return std::make_pair(result(name + "_off"), result(name + "_on"));
  };

  // Masked patch prediction: the same corruption draws over the same pixels, validation included.
  Json masked = folder_run(root, "on");
  masked["train"]["objective"] = "masked_patch";
  masked["data"]["val_size"] = 6;
  const auto [mm, ms] = both(masked, "masked");
  CHECK(ms.at("streamed").get<bool>());
  CHECK(ms.at("test_masked_loss").get<double>() ==
        Approx(mm.at("test_masked_loss").get<double>()).epsilon(1e-6));
  CHECK(ms.at("test_masked_accuracy") == mm.at("test_masked_accuracy"));
  std::ifstream lines_off(tmp.file("masked_off/metrics.jsonl")), lines_on(tmp.file("masked_on/metrics.jsonl"));
  int epochs = 0;
  for (std::string a, b; std::getline(lines_off, a) && std::getline(lines_on, b); ++epochs) {
    const Json ea = Json::parse(a), eb = Json::parse(b);
    CHECK(eb.at("val_masked_loss").get<double>() == Approx(ea.at("val_masked_loss").get<double>()).epsilon(1e-6));
    CHECK(eb.at("train_loss").get<double>() == Approx(ea.at("train_loss").get<double>()).epsilon(1e-6));
  }
  CHECK(epochs == 2);

  // Few-shot: the same draws from the listing's labels, the same features.
  Json few = folder_run(root, "on");
  few["train"]["fewshot"] = {{"shots", {1, 3}}, {"seeds", 2}};
  const auto [fm, fs_] = both(few, "few");
  const Json& shots_memory = fm.at("fewshot").at("shots");
  const Json& shots_streamed = fs_.at("fewshot").at("shots");
  for (const char* k : {"1", "3"})
    for (size_t i = 0; i < 2; ++i)
      CHECK(shots_streamed.at(k).at("accuracies").at(i).get<double>() ==
            Approx(shots_memory.at(k).at("accuracies").at(i).get<double>()).margin(1e-12));
  CHECK(fs_.at("fewshot").at("test_images") == 6);
  // `vitlab eval --fewshot` of the streamed checkpoint: the run's own few-shot numbers.
  const auto eval = test::run_vitlab("eval " + tmp.file("few_on/checkpoints/last.pt") + " --fewshot 1,3 --seeds 2");
  INFO(eval.output);
  REQUIRE(eval.exit_code == 0);
  const Json e = Json::parse(eval.output.substr(eval.output.find('{'), eval.output.rfind('}') - eval.output.find('{') + 1));
  CHECK(e.at("streamed").get<bool>());
  CHECK(e.at("train_images") == 24);
  for (const char* k : {"1", "3"})
    CHECK(e.at("shots").at(k).at("mean").get<double>() ==
          Approx(shots_streamed.at(k).at("mean").get<double>()).margin(1e-12));

  // The attention figures of the first test images: the same images, so the same distances.
  Json figures[2];
  for (int i = 0; i < 2; ++i) {
    const std::string run = i ? "few_on" : "few_off";
    const auto r = test::run_vitlab("analyze " + tmp.file(run + "/checkpoints/last.pt") + " --out " +
                                    tmp.file(run + "_analysis") + " --images 4 --figures attention_distance");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    figures[i] = Json::parse(test::read_text(tmp.file(run + "_analysis/analysis.json")));
  }
  CHECK(figures[1].at("images") == 4);
  const Json& da = figures[0].at("figures").at("attention_distance");
  const Json& db = figures[1].at("figures").at("attention_distance");
  REQUIRE(da.dump().size() > 20);
  CHECK(db.dump() == da.dump());
}

TEST_CASE("configs that streaming refuses exit 2 naming the key", "[streaming][train][config]") {
  TempDir tmp;
  const std::string root = tmp.file("folder");
  test::write_png_split(root, "train", 4);
  test::write_png_split(root, "test", 1);
  const auto refused = [&](Json config, const std::string& key, const std::string& name) {
    const auto r = train(tmp, config, name);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(key) != std::string::npos);
  };
  Json synthetic = test::tiny_base(1);
  synthetic["data"]["streaming"] = "on";
  refused(synthetic, "data.streaming", "a");
  Json rrc = folder_run(root, "off");
  rrc["data"]["augment"] = {{"random_resized_crop", true}};
  refused(rrc, "data.augment.random_resized_crop", "b");
  Json sized = folder_run(root, "on");
  sized["data"]["image_size"] = 0;
  refused(sized, "data.image_size", "c");
  for (const char* key : {"train_size", "per_class", "val_size", "test_size"}) {
    Json too_many = folder_run(root, "on");  // subsets of a streamed folder, checked as in memory
    too_many["data"][key] = 1000;
    refused(too_many, std::string("data.") + key, std::string("subset-") + key);
  }
  Json ra = folder_run(root, "off");
  ra["data"]["augment"] = {{"rand_augment", "rand-m9-mstd0.5"}};
  refused(ra, "data.augment.rand_augment", "g");
  Json ra_spec = folder_run(root, "on");
  ra_spec["data"]["augment"] = {{"rand_augment", "rand-m9-inc1"}};
  refused(ra_spec, "data.augment.rand_augment", "h");
  Json bad_value = folder_run(root, "sometimes");
  refused(bad_value, "data.streaming", "f");
}
