// From a sweep file to the full list of runs: variants (grid points, baselines, named variants)
// times seeds, each with its resolved config per stage. Every run's config is read and validated
// here, before anything runs; all problems are reported together.
#pragma once
#include <string>
#include <vector>

#include "experiment/sweep_spec.h"

namespace vitlab {

// One row of the summary: a set of overrides, run once per seed.
struct Variant {
  std::string key;   // id without the seed part, e.g. "pool=gap__pos_embed=learned_2d"
  std::string kind;  // "grid" | "baseline" | "variant" | "base" (no grid)
  std::string name;  // the baseline's / variant's name; empty otherwise
  std::vector<Override> overrides;  // in application order
  std::string compare_to;  // the reference baseline's key; empty for the reference itself
};

struct PlannedStage {
  std::string name;  // empty for single-stage runs
  std::string dir;   // the folder `vitlab train` writes
  Json config;       // resolved run config (RunConfig::to_json)
};

struct PlannedRun {
  std::string id;
  size_t variant = 0;  // index into SweepPlan::variants
  int64_t seed = 0;
  std::string dir;  // <out>/runs/<id>
  std::vector<PlannedStage> stages;
};

struct SweepPlan {
  std::string out_dir;  // absolute
  std::vector<Variant> variants;  // baselines (reference first), grid points, named variants
  std::vector<PlannedRun> runs;   // seed-major: every variant of seed 0, then seed 1, ...
};

// The variants alone (no config checks): the Cartesian product of the grid in sorted path order,
// last path varying fastest.
std::vector<Variant> expand_variants(const SweepSpec& spec);

// Expands and validates. Throws one ConfigError listing every problem (duplicate ids, invalid
// configs with the run id and which part of the sweep file set the bad value).
SweepPlan plan_sweep(const SweepSpec& spec, const std::string& out_dir);

}  // namespace vitlab
