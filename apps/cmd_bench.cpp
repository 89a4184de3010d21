// vitlab bench: throughput, memory, TFLOP/s and MFU of one model on synthetic data.
#include "apps/cli.h"

#include <iostream>

#include "apps/commands.h"
#include "config/model_presets.h"
#include "core/atomic_file.h"
#include "core/profiler.h"
#include "train/bench.h"

namespace vitlab::app {

int cmd_bench(int argc, char** argv) {
  cxxopts::Options options("vitlab bench", "Measure training or inference speed on synthetic data.");
  options.add_options()("model", "model preset (see vitlab models)", cxxopts::value<std::string>())(
      "image-size", "image size (default: the preset's)", cxxopts::value<int>())(
      "batch", "batch size", cxxopts::value<int>()->default_value("256"))(
      "precision", "bf16 or fp32", cxxopts::value<std::string>()->default_value("bf16"))(
      "mode", "train or infer", cxxopts::value<std::string>()->default_value("train"))(
      "optimizer", "adamw or sgd", cxxopts::value<std::string>()->default_value("adamw"))(
      "steps", "steps per timed window", cxxopts::value<int>()->default_value("20"))(
      "windows", "timed windows (the median is reported)", cxxopts::value<int>()->default_value("5"))(
      "warmup", "untimed warm-up steps", cxxopts::value<int>()->default_value("10"))(
      "device", "auto, cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))(
      "plain", "disable the fast path (fused optimiser, CUDA graph, fused kernels)")(
      "no-fused-kernels", "fast path without the hand-written CUDA kernels (to measure their share)")(
      "threads", "CPU threads (0 = all)", cxxopts::value<int>()->default_value("0"))(
      "peak-tflops", "peak for MFU (default: by GPU model)", cxxopts::value<double>()->default_value("0"))(
      "set", "model override, key=value (repeatable; e.g. depth=9)", cxxopts::value<std::vector<std::string>>())(
      "json", "also write the record to FILE", cxxopts::value<std::string>())(
      "profile", "after timing, profile --steps more steps: Chrome trace to FILE, kernel table printed",
      cxxopts::value<std::string>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("model")) throw UserError("--model is required (see vitlab models)");
  Json model_json = {{"name", args["model"].as<std::string>()}};
  if (args.count("image-size")) model_json["image_size"] = args["image-size"].as<int>();
  std::vector<std::string> sets;
  if (args.count("set")) sets = args["set"].as<std::vector<std::string>>();
  model_json = with_overrides(model_json, sets, "--set");
  BenchOptions o;
  o.model = read_model_config(model_json, "--model/--set", "model");
  Json train_json = {{"batch_size", args["batch"].as<int>()},
                     {"precision", args["precision"].as<std::string>()},
                     {"optimizer", args["optimizer"].as<std::string>()},
                     {"threads", args["threads"].as<int>()},
                     {"fast_path", args.count("plain") == 0},
                     {"lr", 1e-4}};
  JsonReader reader(train_json, "", "vitlab bench");
  o.train.read(reader);
  o.device = args["device"].as<std::string>();
  const std::string mode = args["mode"].as<std::string>();
  if (mode != "train" && mode != "infer") throw UserError("--mode: use train or infer");
  o.train_mode = mode == "train";
  o.fused_kernels = args.count("no-fused-kernels") == 0;
  o.steps = args["steps"].as<int>();
  o.windows = args["windows"].as<int>();
  o.warmup_steps = args["warmup"].as<int>();
  if (o.steps < 1 || o.windows < 1 || o.warmup_steps < 0)
    throw UserError("--steps and --windows must be at least 1, --warmup at least 0");
  o.peak_tflops = args["peak-tflops"].as<double>();
  if (args.count("profile")) o.profile_trace = args["profile"].as<std::string>();
  const Json r = run_benchmark(o);
  std::cout << fmt::format("{} {} {} batch {} on {}: {:.1f} img/s, peak memory {:.2f} GiB, {:.1f} TFLOP/s{}\n",
                           r["model"].get<std::string>(), r["mode"].get<std::string>(),
                           r["precision"].get<std::string>(), r["batch"].get<int>(),
                           r["device_name"].get<std::string>(), r["images_per_second"].get<double>(),
                           r["peak_memory_bytes"].get<double>() / (1 << 30), r["achieved_tflops"].get<double>(),
                           r["mfu"].is_null() ? std::string()
                                              : fmt::format(", MFU {:.1f}%", 100 * r["mfu"].get<double>()));
  if (!r["profile"].is_null()) std::cout << format_kernel_table(r["profile"]);
  if (args.count("json")) write_file_atomic(args["json"].as<std::string>(), r.dump(2) + "\n");
  return 0;
}

}  // namespace vitlab::app
