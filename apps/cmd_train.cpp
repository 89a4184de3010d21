// vitlab train: one run from a config file (or continue one with --resume DIR).
#include "apps/cli.h"

#include <csignal>
#include <filesystem>
#include <iostream>

#include "apps/commands.h"
#include "config/recipe.h"
#include "core/interrupt.h"
#include "train/trainer.h"

namespace vitlab::app {

int cmd_train(int argc, char** argv) {
  cxxopts::Options options("vitlab train", "Train one run. Writes DIR/config.json, DIR/metrics.jsonl, "
                                           "DIR/result.json and DIR/checkpoints/.\nData-parallel: "
                                           "torchrun --no-python --nproc_per_node N vitlab train ... "
                                           "(rank 0 writes the files).\nExit status: 0 "
                                           "completed, 3 diverged, 1 failed, 2 bad input, 130/143 stopped by "
                                           "SIGINT/SIGTERM (after the current step, with a checkpoint "
                                           "that --resume continues).");
  options.add_options()("config", "config JSON file", cxxopts::value<std::string>())(
      "out", "run folder (default runs/<config name>)", cxxopts::value<std::string>())(
      "set", "override, key=value (repeatable)", cxxopts::value<std::vector<std::string>>())(
      "resume", "continue the run in DIR from its last checkpoint", cxxopts::value<std::string>())(
      "device", "cpu, cuda or cuda:N (overrides the config)", cxxopts::value<std::string>())(
      "dist-timeout", "data-parallel (under torchrun): seconds any rank waits for the others before the run fails",
      cxxopts::value<double>()->default_value("300"))(
      "quiet", "no progress output")("h,help", "show this help");
  options.parse_positional({"config"});
  options.positional_help("CONFIG.json");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  TrainOptions train;
  std::string config_file;
  if (args.count("resume")) {
    train.resume = true;
    train.out_dir = args["resume"].as<std::string>();
    if (args.count("out") && args["out"].as<std::string>() != train.out_dir)
      throw UserError("--resume DIR continues the run in DIR; --out names another folder");
    config_file = args.count("config") ? args["config"].as<std::string>()
                                       : (std::filesystem::path(train.out_dir) / "config.json").string();
  } else {
    if (!args.count("config")) throw UserError("missing CONFIG.json (see --help)");
    config_file = args["config"].as<std::string>();
    train.out_dir = args.count("out") ? args["out"].as<std::string>()
                                      : "runs/" + std::filesystem::path(config_file).stem().string();
  }
  std::vector<std::string> sets;
  if (args.count("set")) sets = args["set"].as<std::vector<std::string>>();
  if (args.count("device")) train.device = args["device"].as<std::string>();
  train.quiet = args.count("quiet") > 0;
  const double timeout = args["dist-timeout"].as<double>();
  if (!(timeout > 0)) throw UserError("--dist-timeout must be a positive number of seconds");
  train.dist_timeout = std::chrono::milliseconds(int64_t(timeout * 1000));
  train.dist = read_dist_env();
  train.source = config_file;
  const RunConfig config = load_run_config(config_file, sets);
  install_stop_handlers("stopping after the current step, with a checkpoint to resume from");
  const Json result = train_run(config, train);
  const std::string status = result["status"].get<std::string>();
  if (status == "completed") return 0;
  if (status == "interrupted") {
    std::cerr << "vitlab train: " << result.value("error", std::string()) << "\n";
    return stopped_exit_status(result.value("stopped_by", std::string()) == "SIGINT" ? SIGINT : SIGTERM);
  }
  std::cerr << "vitlab train: run " << status << ": " << result.value("error", std::string()) << "\n";
  return status == "diverged" ? 3 : 1;
}

}  // namespace vitlab::app
