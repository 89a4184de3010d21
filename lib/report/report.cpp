#include "report/report.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "experiment/manifest.h"
#include "experiment/summary.h"
#include "experiment/sweep.h"
#include "report/html.h"
#include "report/report_charts.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {

// Plain CSS, no fonts or images from anywhere.
constexpr const char* kStyle = R"(
body { font-family: sans-serif; max-width: 1280px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
th { background: #f3f3f3; } td.num, th.num { text-align: right; }
code { background: #f5f5f5; padding: 0 3px; }
.note { color: #555; font-size: 0.9em; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 0.8em; color: #555; max-width: 560px; }
svg.chart { background: #fff; }
.bad { color: #b00; }
)";

std::string text_or(const Json& v, const std::string& fallback = "-") {
  return v.is_string() ? v.get<std::string>() : fallback;
}

std::string header_section(const Json& summary, const std::string& sweep_dir) {
  const Json& r = summary["runs"];
  std::string out = fmt::format("<h1>Sweep {}</h1>\n<p>{}</p>\n", escape_html(text_or(summary["sweep"])),
                                escape_html(text_or(summary["description"], "")));
  if (summary["claim"].is_string())
    out += fmt::format("<p><b>Claim.</b> {}</p>\n<p><b>Command.</b> <code>{}</code></p>\n",
                       escape_html(summary["claim"].get<std::string>()), escape_html(text_or(summary["command"])));
  out += fmt::format("<p>Runs: {} planned, {} completed, {} diverged, {} failed, {} interrupted, {} not started. "
                     "Folder: <code>{}</code>.</p>\n",
                     r["planned"].get<int>(), r["completed"].get<int>(), r["diverged"].get<int>(),
                     r["failed"].get<int>(), r["interrupted"].get<int>(), r["pending"].get<int>(),
                     escape_html(sweep_dir));
  return out;
}

// The summary table and the expected-value checks, the cells `vitlab summarize` prints.
std::string summary_section(const Json& summary) {
  std::string out = "<h2 id=\"summary\">Summary</h2>\n" + html_table(summary_cells(summary)) +
                    "<p class=\"note\">Δ and p: each row against the row it is compared with (Welch's t-test over "
                    "seeds, two-sided). ± is the sample standard deviation over seeds.</p>\n";
  const auto checks = expected_cells(summary);
  if (checks.empty()) return out;
  const Json& e = summary["expected"];
  return out + fmt::format("<h3>Expected ({}; measured on {})</h3>\n", escape_html(text_or(e["metric"])),
                           escape_html(text_or(e["measured_on"]))) +
         html_table(checks);
}

std::string problems_section(const Json& summary) {
  std::string out = "<h2 id=\"problems\">Runs that did not complete</h2>\n";
  if (summary["problems"].empty()) return out + "<p>None: every planned run completed.</p>\n";
  out += "<ul>\n";
  for (const auto& p : summary["problems"])
    out += fmt::format("<li><code>{}</code>: <span class=\"bad\">{}</span>{}</li>\n", escape_html(p["id"].get<std::string>()),
                       escape_html(p["status"].get<std::string>()),
                       p["error"].is_null() ? "" : ": " + escape_html(p["error"].get<std::string>()));
  return out + "</ul>\n";
}

// UserError unless the folder holds at least one run folder of its manifest.
void check_has_runs(const Json& manifest, const std::string& sweep_dir) {
  std::error_code ec;
  for (const auto& run : manifest["runs"])
    if (fs::is_directory(fs::path(sweep_dir) / "runs" / run["id"].get<std::string>(), ec)) return;
  fail<UserError>("{}: the sweep has no run folders yet (runs/<id>/); run `vitlab sweep` first, or pass the "
                  "folder it wrote", sweep_dir);
}

}  // namespace

std::string sweep_report_html(const ReportOptions& o, std::FILE* log) {
  const Json manifest = read_manifest(o.sweep_dir);
  check_has_runs(manifest, o.sweep_dir);
  const Json summary = build_summary(manifest, o.sweep_dir);
  int skipped = 0;
  const std::vector<RunFiles> runs = read_run_files(manifest, o.sweep_dir, skipped);
  const std::vector<VariantAnalysis> analyses = analyze_best_runs(summary, runs, o.sweep_dir, o.analysis, log);
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<link rel=\"icon\" href=\"data:,\">\n";  // no favicon request
  html += fmt::format("<title>vitlab sweep {}</title>\n<style>{}</style>\n</head>\n<body>\n",
                      escape_html(text_or(summary["sweep"])), kStyle);
  html += header_section(summary, o.sweep_dir);
  html += summary_section(summary);
  html += accuracy_bar_section(summary);
  html += data_size_section(summary, runs);
  std::vector<std::string> stages = manifest.value("stages", std::vector<std::string>{});
  if (stages.empty()) stages.push_back("");
  html += training_curves_section(summary, runs, stages);
  if (skipped) html += fmt::format("<p class=\"bad\">{} unreadable metrics line(s) or result file(s) left out.</p>\n", skipped);
  html += analysis_section(analyses);
  html += problems_section(summary);
  html += "<p class=\"note\">Written by <code>vitlab report</code>; everything on this page is in this file.</p>\n";
  return html + "</body>\n</html>\n";
}

std::string write_sweep_report(const ReportOptions& o, std::FILE* log) {
  const std::string path = o.out_file.empty() ? (fs::path(o.sweep_dir) / "report.html").string() : o.out_file;
  check_output_folder(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string());
  const std::string html = sweep_report_html(o, log);
  write_file_atomic(path, html);
  return path;
}

}  // namespace vitlab
