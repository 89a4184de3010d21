// vitlab eval: re-evaluate a checkpoint with the data settings stored inside it, or (--fewshot)
// run the few-shot linear evaluation on its frozen features.
#include "apps/cli.h"

#include <filesystem>
#include <iostream>

#include "apps/commands.h"
#include "config/run_config.h"
#include "core/cpu_runtime.h"
#include "data/batcher.h"
#include "data/load_data.h"
#include "data/streamed_folder.h"
#include "ops/fast_kernels.h"
#include "train/evaluate.h"
#include "train/fewshot.h"
#include "train/weights_init.h"

namespace vitlab::app {
namespace {

// "1,5,10,25" -> {1, 5, 10, 25}.
std::vector<int64_t> parse_shots(const std::string& text) {
  std::vector<int64_t> shots;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    size_t used = 0;
    int64_t k = 0;
    try {
      k = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || k < 1)
      throw UserError(fmt::format("--fewshot: \"{}\" is not a list of images per class such as "
                                  "1,5,10,25 (\"{}\" is not a positive whole number)", text, item));
    shots.push_back(k);
    start = comma + 1;
  }
  return shots;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  cxxopts::Options options("vitlab eval", "Evaluate a checkpoint on the test (or validation) split.");
  options.add_options()("checkpoint", "checkpoint file (.pt)", cxxopts::value<std::string>())(
      "split", "test or val", cxxopts::value<std::string>()->default_value("test"))(
      "device", "cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))(
      "batch", "evaluation batch size", cxxopts::value<int>()->default_value("512"))(
      "fewshot", "few-shot linear evaluation with these images per class, e.g. 1,5,10,25",
      cxxopts::value<std::string>())(
      "seeds", "few-shot draws per K", cxxopts::value<int>()->default_value("5"))(
      "h,help", "show this help");
  options.parse_positional({"checkpoint"});
  options.positional_help("CHECKPOINT.pt");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("checkpoint")) throw UserError("missing CHECKPOINT.pt (see --help)");
  const auto path = args["checkpoint"].as<std::string>();
  const auto split = args["split"].as<std::string>();
  if (split != "test" && split != "val")
    throw UserError(fmt::format("--split: \"{}\" is not a split; use test or val", split));
  if (args["batch"].as<int>() < 1) throw UserError("--batch: must be at least 1");
  if (args["seeds"].as<int>() < 1) throw UserError("--seeds: must be at least 1");
  std::vector<int64_t> shots;
  if (args.count("fewshot")) shots = parse_shots(args["fewshot"].as<std::string>());
  const CheckpointModel loaded = load_model_from_checkpoint(path);
  const RunConfig& config = loaded.config;
  const DeviceChoice dev = parse_device(args["device"].as<std::string>(), "--device");
  const torch::Device device = dev.use();

  if (!dev.cuda) configure_cpu_threads(config.train.threads);  // as the run trained (train.threads)
  ImageClassifier model = loaded.model;
  model->to(device);
  const ops::FastKernels kernels(dev.cuda && config.train.fast_path);  // the run's CUDA kernels
  // A streamed run's parts from its run folder's listings (checkpoints/ is in the run folder),
  // else listed again with the config's subset draw.
  const std::string run_dir = std::filesystem::path(path).parent_path().parent_path().string();
  DataBundle data = load_data(config.data, path, has_cached_listing(run_dir, "train") ? run_dir : "");
  const bool bf16 = dev.cuda && config.train.precision == Precision::kBf16;
  const Normalizer normalize(data.mean, data.std, device);
  const auto report = [&](const EvalResult& r, Json extra) {
    Json out = {{"checkpoint", path}, {"split", split}, {"epochs_done", loaded.checkpoint.epochs_done},
                {"accuracy", r.accuracy}, {"loss", r.loss}, {"images", r.count}, {"device", dev.str()}};
    out.update(extra);
    std::cout << out.dump(2) << "\n";
    return 0;
  };
  FewShotOptions few;
  few.shots = shots;
  few.seeds = args["seeds"].as<int>();
  few.batch_size = args["batch"].as<int>();
  few.bf16 = bf16;
  few.source = "--fewshot";
  const auto report_fewshot = [&](const FewShotResult& r, Json extra) {
    Json out = r.to_json();
    out["checkpoint"] = path;
    out["split"] = split;
    out["train_images"] = data.train_count();
    out["device"] = dev.str();
    out.update(extra);
    std::cout << out.dump(2) << "\n" << "few-shot " << r.summary() << "\n";
    return 0;
  };
  if (data.streamed) {
    const FileListing& files = split == "test" ? data.streamed->test : data.streamed->val;
    if (files.size() == 0) throw UserError(fmt::format("{}: the run has no {} split (data.val_size is 0)", path, split));
    BadImageLog bad([](const std::string& w) { std::cerr << "vitlab eval: warning: skipped " << w << "\n"; });
    const StreamOptions decode = stream_options(config.data, false);
    if (!shots.empty()) {  // the shots are checked against the listing's labels before any decoding
      const FewShotResult r = fewshot_evaluate_streamed(*model, data.streamed->train, files, decode,
                                                        device, normalize, few, &bad);
      return report_fewshot(r, {{"streamed", true}, {"bad_images", bad.count()}});
    }
    const EvalResult r = evaluate_streamed(*model, files, decode, args["batch"].as<int>(), normalize,
                                           bf16, device, &bad);
    return report(r, {{"streamed", true}, {"bad_images", bad.count()}});
  }
  const Dataset& part = split == "test" ? data.test : data.val;
  if (part.size() == 0) throw UserError(fmt::format("{}: the run has no {} split (data.val_size is 0)", path, split));
  if (!shots.empty()) {
    check_fewshot(data.train.labels, data.num_classes, few);
    return report_fewshot(fewshot_evaluate(*model, DeviceDataset(data.train, device),
                                           DeviceDataset(part, device), normalize, few),
                          Json::object());
  }
  return report(evaluate(*model, DeviceDataset(part, device), normalize, args["batch"].as<int>(), bf16),
                Json::object());
}

}  // namespace vitlab::app
