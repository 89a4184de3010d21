// A sweep file: what `vitlab sweep` reads. Strict like every vitlab config: unknown keys, wrong
// types and empty lists are ConfigErrors naming the file and the JSON path.
//
//   {
//     "description": "one line: what the sweep varies, how many runs, how long where",  (required)
//     "claim":     "the paper's finding it tests, citing its table or figure",          (required)
//     "command":   "the exact command that reproduces the results",                      (required)
//     "expected":  { "metric": "test_accuracy_pct",   or "diff_pts" (Δ from the row's baseline)
//                    "values": { "baseline=bit": 85.55, ... },   row (variant key) -> value
//                    "tolerance": 1.0,        how far a measured value may be, same unit
//                    "measured_on": "where, when, which commit" },                       (required)
//                  before the first measurement: "values": {}, "measured_on": "not yet measured"
//     "extends":   "recipes/fmnist.json",  a recipe file (config/recipe.h), relative to this
//                  file's folder, whose config "base" is merged over (RFC 7396)
//     "base":      { a run config, as `vitlab train` reads it, without "seed" },
//                  required without "extends"; with it, only what differs from the recipe
//     "grid":      { "model.pos_embed": ["none", "learned_1d"], ... },  dotted path -> values;
//                  or a named axis, name -> {alternative: {overrides}}, for settings that change
//                  together: "pooling": {"cls": {}, "gap": {"model.pool": "gap", ...}};
//                  the variants are the Cartesian product (absent or {}: the base alone)
//     "seeds":     [0, 1, 2],                                            (required, distinct)
//     "baselines": { "bit": { "model.name": "bit_r26_28", ... } },       name -> overrides of base
//     "compare_to": "bit",         the baseline every row is compared with (needed when > 1)
//     "shared_axes": ["data.train_size"],  grid axes that also apply to baselines and variants;
//                  rows are then compared with the baseline at the same values
//     "variants":  { "gap": { "model.pool": "gap", ... } },  named extra override sets
//     "stages":    [ {"name": "pretrain", "set": {...}},
//                    {"name": "finetune", "set": {"init_from": "@pretrain", ...}} ]
//   }
//
// Override paths may start with "<stage>:" to apply in one stage only ("finetune:train.lr").
// The expected values are checked against the summary: each listed row's measured value, its
// deviation and whether it is within the tolerance (summary.md, summary.json). The rows are
// checked to exist when the sweep is planned.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"
#include "config/recipe.h"

namespace vitlab {

struct Override {
  std::string path;    // dotted config path, optionally "<stage>:" first
  Json value;
  std::string origin;  // where the sweep file sets it, for messages: grid["train.lr"][1]

  std::string stage() const;       // the "<stage>:" prefix, or ""
  std::string config_path() const;  // the path without the stage prefix
};

struct NamedOverrides {
  std::string name;
  std::vector<Override> overrides;  // sorted by path
};

struct GridAxis {
  std::string path;          // a dotted config path, or a named axis' name
  std::vector<Json> values;  // in file order (value axes)
  // Named axes: the alternatives' names and override sets, in name order.
  std::vector<std::string> names;
  std::vector<std::vector<Override>> bundles;
  bool named() const { return !names.empty(); }
  size_t size() const { return named() ? names.size() : values.size(); }
};

struct SweepStage {
  std::string name;
  std::string description;
  std::vector<Override> set;  // sorted by path; no stage prefixes
};

// What the sweep should measure, and where that was measured.
struct Expected {
  std::string metric;  // "test_accuracy_pct" (a row's mean, percent) | "diff_pts" (its Δ, points)
  std::vector<std::pair<std::string, double>> values;  // row (variant key) -> value, by key
  double tolerance = 0;  // in the metric's unit
  std::string measured_on;  // "not yet measured" exactly when values is empty
  Json to_json() const;
};
constexpr const char* kNotYetMeasured = "not yet measured";

struct SweepSpec {
  std::string source;  // the file name, prefixed to messages
  std::string name;    // the file's stem: the default output folder is runs/<name>
  std::string description;
  std::string claim;
  std::string command;
  Expected expected;
  Json raw;   // the file's content, stored in the sweep manifest
  bool extends = false;  // whether `recipe` was read
  Recipe recipe;
  Json own_base;  // "base" as written (an empty object when absent)
  Json base;      // own_base merged over the recipe's config: what every run starts from
  std::vector<GridAxis> grid;  // sorted by path (the order of ids and of the Cartesian product)
  std::vector<int64_t> seeds;
  std::vector<NamedOverrides> baselines;  // sorted by name
  std::string compare_to;                 // a baseline's name (filled in when there is one)
  std::vector<std::string> shared_axes;   // grid paths, sorted
  std::vector<NamedOverrides> variants;   // sorted by name
  std::vector<SweepStage> stages;         // in order; empty = single-stage runs
};

// Checks the structure (not yet the run configs: see plan_sweep). `source` names the file; a
// recipe that "extends" names is looked for relative to its folder.
SweepSpec read_sweep_spec(const Json& json, const std::string& source, const std::string& name);
SweepSpec read_sweep_file(const std::string& file);

// Names of baselines, variants and stages become parts of ids and folder names.
bool is_valid_name(const std::string& name);

}  // namespace vitlab
