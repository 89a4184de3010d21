// vitlab: git-style subcommands. Errors in the user's input exit with status 2 and one clear
// message; anything else is a bug and exits with status 1.
#include <c10/util/Exception.h>
#include "apps/cli.h"
#include <fmt/format.h>

#include <csignal>
#include <cstring>
#include <iostream>

#include "apps/commands.h"
#include "core/build_info.h"
#include "models/parts.h"
#include "train/data_parallel.h"
#include "core/cpu_runtime.h"
#include "core/error.h"

namespace vitlab::app {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"models", "list the model factory: name, parameters, description", cmd_models},
      {"config", "print a resolved config (all defaults filled) after checking it", cmd_config},
      {"train", "train one run from a config file", cmd_train, true},
      {"eval", "re-evaluate a checkpoint on the test set", cmd_eval, true},
      {"sweep", "run an ablation sweep (grid x seeds) and compare with the baseline", cmd_sweep, true},
      {"summarize", "rebuild a sweep's summary from its run folders", cmd_summarize},
      {"export", "write a checkpoint's weights as safetensors (timm names) or LibTorch", cmd_export},
      {"import", "turn timm safetensors or JAX .npz weights into a vitlab checkpoint", cmd_import},
      {"analyze", "analysis figures of a checkpoint: attention distance, rollout, embeddings", cmd_analyze, true},
      {"report", "a sweep's HTML report: table, charts, training curves, analysis figures", cmd_report, true},
      {"bench", "measure training or inference speed, memory and MFU", cmd_bench, true},
      {"data", "image folders for streaming: synthetic JPEG folders, decoding throughput", cmd_data},
  };
  return table;
}

namespace {
void print_usage() {
  std::cout << "vitlab " << version() << " — Vision Transformer ablations on LibTorch "
            << torch_version() << "\n\nusage: vitlab <command> [options]\n\ncommands:\n";
  for (const auto& c : commands()) std::cout << fmt::format("  {:<10} {}\n", c.name, c.summary);
  std::cout << "\n`vitlab <command> --help` shows a command's options.\n";
}
}  // namespace
}  // namespace vitlab::app

int main(int argc, char** argv) {
  using namespace vitlab;
  install_model_part_checks();  // the model parts' rules into every config check
  // A file over the size limit (ulimit -f) fails its write with EFBIG and a clear error, as a
  // full disk does, instead of killing the program.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    app::print_usage();
    return argc < 2 ? kExitUserError : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "vitlab " << version() << " (" << git_commit() << "), LibTorch " << torch_version()
              << ", data-parallel: " << data_parallel_backends() << "\n";
    return 0;
  }
  for (const auto& c : app::commands()) {
    if (c.name != std::string(argv[1])) continue;
    if (c.cpu_compute) prepare_cpu_runtime(argv);  // sweep: its child runs inherit the settings
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const UserError& e) {
      std::cerr << "vitlab " << c.name << ": error: " << e.what() << "\n";
      return kExitUserError;
    } catch (const cxxopts::exceptions::exception& e) {
      std::cerr << "vitlab " << c.name << ": error: " << e.what() << " (see --help)\n";
      return kExitUserError;
    } catch (const c10::Error& e) {
      // Out of memory is the machine's limit, not a bug: said as such (a sweep records it).
      const std::string what = e.what_without_backtrace();
      const bool memory = what.find("can't allocate memory") != std::string::npos ||
                          what.find("out of memory") != std::string::npos;
      std::cerr << "vitlab " << c.name << (memory ? ": error: out of memory: " : ": internal error: ") << what << "\n";
      return kExitInternalError;
    } catch (const std::exception& e) {
      std::cerr << "vitlab " << c.name << ": internal error: " << e.what() << "\n";
      return kExitInternalError;
    }
  }
  std::cerr << "vitlab: unknown command \"" << argv[1] << "\"; commands:";
  for (const auto& c : app::commands()) std::cerr << " " << c.name;
  std::cerr << "\n";
  return kExitUserError;
}
