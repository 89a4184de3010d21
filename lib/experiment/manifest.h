// The sweep manifest, DIR/sweep.json, written when a sweep starts: the sweep file's content, its
// claim, command and expected values, the recipe it extends and the base merged over it, the
// variants (key, kind, overrides, the baseline each is compared with) and which run id belongs
// to which variant and seed. `vitlab summarize` needs nothing else besides the run folders.
#pragma once
#include <string>

#include "experiment/plan.h"

namespace vitlab {

constexpr int kManifestFormat = 1;

Json make_manifest(const SweepSpec& spec, const SweepPlan& plan);

// Reads DIR/sweep.json; UserError naming the folder when it is not a sweep folder.
Json read_manifest(const std::string& sweep_dir);

std::string manifest_path(const std::string& sweep_dir);

// The stages one run of the manifest goes through: its own list (a variant may skip a stage),
// else the sweep's.
std::vector<std::string> run_stage_names(const Json& manifest, const Json& run);

}  // namespace vitlab
