// vitlab config: check a config file (with --set overrides) and print it resolved.
#include "apps/cli.h"

#include <iostream>

#include "apps/commands.h"
#include "config/recipe.h"

namespace vitlab::app {

int cmd_config(int argc, char** argv) {
  cxxopts::Options options("vitlab config",
                           "Check a run config and print it with every default filled in.");
  options.add_options()("config", "config JSON file", cxxopts::value<std::string>())(
      "set", "override, key=value (repeatable)", cxxopts::value<std::vector<std::string>>())(
      "h,help", "show this help");
  options.parse_positional({"config"});
  options.positional_help("CONFIG.json");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("config")) throw UserError("missing CONFIG.json (see --help)");
  const auto file = args["config"].as<std::string>();
  std::vector<std::string> sets;
  if (args.count("set")) sets = args["set"].as<std::vector<std::string>>();
  const RunConfig config = load_run_config(file, sets);
  std::cout << config.to_json().dump(2) << "\n";
  return 0;
}

}  // namespace vitlab::app
