// vitlab summarize: rebuild a sweep's summary files from its run folders.
#include "apps/cli.h"

#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/error.h"
#include "experiment/sweep.h"

namespace vitlab::app {

int cmd_summarize(int argc, char** argv) {
  cxxopts::Options options("vitlab summarize",
                           "Rebuild DIR/summary.{json,csv,md} from DIR/sweep.json and the results "
                           "in DIR/runs/*/, and print the table. Works on a sweep that is still "
                           "running or was interrupted (unfinished runs are listed).");
  options.add_options()("dir", "sweep folder", cxxopts::value<std::string>())(
      "publish", "then copy the results (sweep.json, summary files, each run's result.json and "
                 "metrics.jsonl; no checkpoints) to DEST, e.g. experiments/results/<sweep>; DEST "
                 "must not exist or be empty",
      cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"dir"});
  options.positional_help("DIR");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("dir")) throw UserError("missing the sweep folder DIR (see --help)");
  std::cout.flush();
  const std::string dir = args["dir"].as<std::string>();
  const int status = summarize_sweep(dir, stdout);
  if (args.count("publish")) publish_sweep(dir, args["publish"].as<std::string>(), stdout);
  return status;
}

}  // namespace vitlab::app
