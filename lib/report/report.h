// `vitlab report SWEEP_DIR`: one self-contained HTML page of a sweep, SWEEP_DIR/report.html.
// Nothing in it loads from anywhere (no network, CDN, script or neighbouring file): the charts
// are SVG written here (report/svg_chart.h) and the analysis images are inline PNG.
//
// Contents, from the same sources as `vitlab summarize` (the manifest and the run folders):
//   - the sweep's claim, command and run counts, and the summary table with the expected checks;
//   - a bar chart of every row's test accuracy with ± the std over seeds, against the baseline;
//   - when the rows differ in training-set size: test accuracy against training images, one line
//     per model (ViT and BiT), the paper's Fig. 3/4;
//   - training curves per stage: training loss and validation accuracy per epoch (metrics.jsonl);
//   - the analysis figures of each variant's best run (report/report_analysis.h);
//   - the runs that failed, diverged or did not finish, with their errors.
#pragma once
#include <cstdio>
#include <string>

#include "report/report_analysis.h"

namespace vitlab {

struct ReportOptions {
  std::string sweep_dir;
  std::string out_file;  // empty: SWEEP_DIR/report.html
  ReportAnalysisOptions analysis;
};

// Writes the report atomically and returns its path. UserError (exit 2) for a folder that is not
// a sweep folder, a sweep with no run folder yet, or an output that cannot be written.
std::string write_sweep_report(const ReportOptions& options, std::FILE* log);

// The page itself (what write_sweep_report writes), for tests.
std::string sweep_report_html(const ReportOptions& options, std::FILE* log);

}  // namespace vitlab
