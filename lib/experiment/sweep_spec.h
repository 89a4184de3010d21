// A sweep file: what `vitlab sweep` reads. Strict like every vitlab config: unknown keys, wrong
// types and empty lists are ConfigErrors naming the file and the JSON path.
//
//   {
//     "description": "what it tests, the paper's finding, how long it takes where",  (required)
//     "base":      { a full run config, as `vitlab train` reads it, without "seed" },   (required)
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
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

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

struct SweepSpec {
  std::string source;  // the file name, prefixed to messages
  std::string name;    // the file's stem: the default output folder is runs/<name>
  std::string description;
  Json raw;   // the file's content, stored in the sweep manifest
  Json base;
  std::vector<GridAxis> grid;  // sorted by path (the order of ids and of the Cartesian product)
  std::vector<int64_t> seeds;
  std::vector<NamedOverrides> baselines;  // sorted by name
  std::string compare_to;                 // a baseline's name (filled in when there is one)
  std::vector<std::string> shared_axes;   // grid paths, sorted
  std::vector<NamedOverrides> variants;   // sorted by name
  std::vector<SweepStage> stages;         // in order; empty = single-stage runs
};

// Checks the structure (not yet the run configs: see plan_sweep). `source` names the file.
SweepSpec read_sweep_spec(const Json& json, const std::string& source, const std::string& name);
SweepSpec read_sweep_file(const std::string& file);

// Names of baselines, variants and stages become parts of ids and folder names.
bool is_valid_name(const std::string& name);

}  // namespace vitlab
