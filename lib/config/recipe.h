// Recipe files: settings that several run configs and sweeps share (the Fashion-MNIST reference
// recipe: experiments/recipes/fmnist.json), written once so that each file states only what it
// changes.
//
//   {
//     "description": "what the recipe is and where its settings come from",   (required)
//     "config": { a run config without "seed", usually partial }              (required)
//   }
//
// A run config or a sweep file names one with "extends": "recipes/fmnist.json", a path relative
// to its own folder. The file's own settings (a run config's keys, a sweep's "base") apply over
// the recipe's config as a JSON Merge Patch (RFC 7396): objects merge key by key and the file's
// value wins; lists and scalars replace the recipe's; null removes the recipe's key, so the
// field's default applies. A recipe cannot itself extend another: every setting a run gets is
// then in one of two files. The recipe's config has no "seed": the runs sharing it differ by seed.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"
#include "config/run_config.h"

namespace vitlab {

struct Recipe {
  std::string file;  // as found: the referring file's folder joined with the "extends" path
  std::string description;
  Json config;       // as written (validated only once merged, as part of a full run config)
};

// Reads the recipe that `extends` (the value at JSON path `key` of the file `referrer`) names.
// ConfigError naming the referrer, the key and the recipe file: not a string, no such file, not
// JSON, a recipe that extends another, unknown keys, a missing or empty description or config.
Recipe read_recipe(const Json& extends, const std::string& referrer, const std::string& key = "extends");

// The recipe's config with `own` merged over it (RFC 7396).
Json merge_over_recipe(const Recipe& recipe, const Json& own);

// A run config file as `vitlab train` and `vitlab config` read it: with "extends", the recipe's
// config with the file's other keys merged over it; then the `key=value` overrides (--set), then
// validation. An invalid value that came from the recipe is reported as the recipe's.
RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides);

// For messages: " (set by the recipe FILE)" when the dotted path at the start of a ConfigError's
// message ("train.lr: ...") is set by the recipe and not by `own`; "" otherwise.
std::string recipe_origin(const std::string& message, const Recipe& recipe, const Json& own);

}  // namespace vitlab
