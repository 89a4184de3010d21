// What the report reads of each planned run of a sweep: every stage's folder, metrics.jsonl
// records and result.json, read once and shared by the charts and the analysis.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

struct StageFiles {
  std::string name;          // "" for a single-stage run
  std::string dir;           // SWEEP_DIR/runs/<id>[/<stage>]
  std::vector<Json> epochs;  // metrics.jsonl, one record per epoch
  Json result;               // null when there is none yet
};
struct RunFiles {
  std::string id, variant;
  int64_t seed = 0;
  std::vector<StageFiles> stages;  // in the run's order; the last one gives its test accuracy
};

// Reads every run of the manifest. Unreadable lines or files are left out and counted in `skipped`
// (the report says so), never fatal.
std::vector<RunFiles> read_run_files(const Json& manifest, const std::string& sweep_dir, int& skipped);

// The run with this id, or null.
const RunFiles* find_run(const std::vector<RunFiles>& runs, const std::string& id);

}  // namespace vitlab
