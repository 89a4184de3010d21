// vitlab models: the factory table with parameter counts.
#include "apps/cli.h"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "apps/commands.h"
#include "config/model_presets.h"
#include "models/factory.h"

namespace vitlab::app {

namespace {
std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
}  // namespace

int cmd_models(int argc, char** argv) {
  cxxopts::Options options("vitlab models", "List the model factory: name, parameters, description.");
  options.add_options()("json", "print JSON (name, family, parameters, description, config)")(
      "h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  Json rows = Json::array();
  if (!args.count("json"))
    std::cout << fmt::format("{:<18} {:<7} {:>13}  {}\n", "name", "family", "parameters", "description");
  for (const auto& preset : model_presets()) {
    const int64_t params = count_parameters(preset.config);  // shapes only, nothing allocated
    const char* family = enum_name(preset.config.family, model_family_names());
    if (args.count("json")) {
      rows.push_back({{"name", preset.name}, {"family", family}, {"parameters", params},
                      {"description", preset.description}, {"config", preset.config.to_json()}});
    } else {
      std::cout << fmt::format("{:<18} {:<7} {:>13}  {}\n", preset.name, family,
                               with_thousands(params), preset.description);
    }
  }
  if (args.count("json")) std::cout << rows.dump(2) << "\n";
  return 0;
}

}  // namespace vitlab::app
