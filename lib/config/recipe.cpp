#include "config/recipe.h"

#include <filesystem>

namespace vitlab {
namespace fs = std::filesystem;

namespace {
// Whether a dotted path ("data.augment.flip", "model.resnet_layers[1]") is set in `json`.
bool sets_path(const Json& json, const std::string& dotted) {
  const Json* node = &json;
  size_t start = 0;
  const std::string path = dotted.substr(0, dotted.find('['));
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(part)) return false;
    node = &node->at(part);
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
  return false;
}
}  // namespace

Recipe read_recipe(const Json& extends, const std::string& referrer, const std::string& key) {
  if (!extends.is_string() || extends.get<std::string>().empty())
    config_error(referrer, key, fmt::format("expected the path of a recipe file (relative to this "
                                            "file's folder, e.g. \"recipes/fmnist.json\"), got {}",
                                            json_brief(extends)));
  Recipe recipe;
  recipe.file = (fs::path(referrer).parent_path() / extends.get<std::string>()).lexically_normal().string();
  const std::string where = fmt::format("{}: {}: ", referrer, key);
  std::error_code ec;
  if (!fs::is_regular_file(recipe.file, ec))
    throw ConfigError(fmt::format("{}recipe file {} not found (the path is relative to the folder "
                                  "of {})", where, recipe.file, referrer));
  Json json;
  try {
    json = read_json_file(recipe.file);
  } catch (const ConfigError& e) {
    throw ConfigError(where + e.what());
  }
  if (!json.is_object())
    config_error(recipe.file, "", fmt::format("expected a recipe object {{\"description\", \"config\"}}, "
                                              "got {}", json_brief(json)));
  if (json.contains("extends"))
    config_error(recipe.file, "extends",
                 "a recipe cannot extend another recipe; put the shared settings in one recipe file");
  JsonReader r(json, "", recipe.file);
  r.read("description", recipe.description);
  if (recipe.description.find_first_not_of(" \t\n") == std::string::npos)
    r.error("description", "missing or empty; say what the recipe is and where its settings come from");
  if (!r.has("config")) r.error("config", "missing; give the shared run config (without \"seed\")");
  recipe.config = json.at("config");
  r.child("config");
  if (!recipe.config.is_object())
    r.error("config", fmt::format("expected an object (a run config without \"seed\"), got {}",
                                  json_brief(recipe.config)));
  r.finish();
  if (recipe.config.contains("seed"))
    config_error(recipe.file, "config.seed", "a recipe is shared by runs that differ by seed; set "
                                             "\"seed\" in the run config or \"seeds\" in the sweep");
  if (recipe.config.contains("extends"))
    config_error(recipe.file, "config.extends",
                 "a recipe cannot extend another recipe; put the shared settings in one recipe file");
  return recipe;
}

Json merge_over_recipe(const Recipe& recipe, const Json& own) {
  Json merged = recipe.config;
  merged.merge_patch(own);
  return merged;
}

RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides) {
  const Json json = read_json_file(file);
  if (!json.is_object() || !json.contains("extends"))
    return read_run_config(with_overrides(json, overrides), file);
  const Recipe recipe = read_recipe(json.at("extends"), file);
  Json own = json;
  own.erase("extends");
  const Json merged = with_overrides(merge_over_recipe(recipe, own), overrides);
  try {
    return read_run_config(merged);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}{}", file, e.what(),
                                  recipe_origin(e.what(), recipe, with_overrides(own, overrides))));
  }
}

std::string recipe_origin(const std::string& message, const Recipe& recipe, const Json& own) {
  const auto colon = message.find(": ");
  if (colon == std::string::npos) return "";
  const std::string path = message.substr(0, colon);
  if (path.empty() || sets_path(own, path) || !sets_path(recipe.config, path)) return "";
  return " (set by the recipe " + recipe.file + ")";
}

}  // namespace vitlab
