// The report's analysis figures: `vitlab analyze` (analysis/analyze.h) of the best run of each
// variant, made when the report is made and kept in SWEEP_DIR/analysis/<variant>/ so the next
// report reuses them (until the run's checkpoint is newer). A published sweep folder has no
// checkpoints: its copied analysis folders are used as they are.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "config/json_reader.h"
#include "report/run_files.h"

namespace vitlab {

struct VariantAnalysis {
  std::string variant;
  std::string run_id;        // the best run (highest test accuracy); empty when the variant has none
  double test_accuracy = 0;
  std::string dir;           // SWEEP_DIR/analysis/<variant>
  Json analysis;             // analysis.json; null when there is none
  std::string note;          // how it was obtained, or why there is none
};

struct ReportAnalysisOptions {
  bool make = true;             // run the analysis where it is missing or stale
  std::string device = "auto";  // as `vitlab analyze --device`
  int64_t images = 32;
};

// One entry per summary row with a completed run. Analysis errors become the entry's note: a
// report is never lost to a figure.
std::vector<VariantAnalysis> analyze_best_runs(const Json& summary, const std::vector<RunFiles>& runs,
                                               const std::string& sweep_dir, const ReportAnalysisOptions& options,
                                               std::FILE* log);

// The HTML section: per variant, the mean attention distance as an SVG chart (one mark per head
// and layer) and the rollout, position-embedding and filter images inline.
std::string analysis_section(const std::vector<VariantAnalysis>& analyses);

}  // namespace vitlab
