#include "experiment/summary.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/duration.h"
#include "experiment/manifest.h"
#include "experiment/run_folder.h"
#include "experiment/stats.h"

namespace vitlab {
namespace fs = std::filesystem;

std::string significance_note(double p) {
  if (p < 0.01) return "p<0.01";
  if (p < 0.05) return "p<0.05";
  return "n.s.";
}

namespace {
Json optional_number(const std::optional<double>& v) { return v ? Json(*v) : Json(); }

struct VariantRuns {
  std::vector<double> accuracy, seconds, speed;
  std::map<int64_t, std::vector<double>> fewshot;  // K -> per seed, the mean over its draws
  Json results = Json::array();  // per completed seed
  int64_t parameters = 0;
  int planned = 0;
};

// Each expected row's measured value, deviation and whether it is within the tolerance.
Json check_expected(const Json& expected, const Json& rows) {
  if (!expected.is_object()) return Json();  // a manifest written before sweeps stated them
  const bool diff = expected["metric"] == "diff_pts";
  const double tolerance = expected["tolerance"].get<double>();
  Json checks = Json::array();
  for (auto it = expected["values"].begin(); it != expected["values"].end(); ++it) {
    Json measured;
    for (const auto& row : rows) {
      if (row["variant"] != it.key()) continue;
      const Json& v = row[diff ? "diff" : "mean"];
      if (!v.is_null()) measured = 100.0 * v.get<double>();
    }
    Json check = {{"variant", it.key()}, {"expected", it.value()}, {"measured", measured},
                  {"deviation", Json()}, {"within_tolerance", Json()}};
    if (!measured.is_null()) {
      const double deviation = measured.get<double>() - it.value().get<double>();
      check["deviation"] = deviation;
      // The slack absorbs the percent conversion's rounding (0.8555 -> 85.55000000000001).
      check["within_tolerance"] = std::abs(deviation) <= tolerance + 1e-9;
    }
    checks.push_back(check);
  }
  Json out = expected;
  out["checks"] = checks;
  return out;
}
// Every planned run's outcome, read from its folder: completed ones grouped by variant, the
// others listed as problems, and a count per status.
struct SweepRuns {
  std::map<std::string, VariantRuns> by_variant;
  Json problems = Json::array();
  std::map<std::string, int> counts = {{"completed", 0}, {"diverged", 0}, {"failed", 0},
                                       {"interrupted", 0}, {"pending", 0}};
};

SweepRuns collect_runs(const Json& manifest, const std::string& sweep_dir) {
  SweepRuns out;
  for (const auto& run : manifest["runs"]) {
    const std::string id = run["id"].get<std::string>();
    const std::string variant = run["variant"].get<std::string>();
    const RunOutcome o = read_run_outcome((fs::path(sweep_dir) / "runs" / id).string(),
                                          run_stage_names(manifest, run));
    VariantRuns& v = out.by_variant[variant];
    ++v.planned;
    ++out.counts[o.status];
    if (o.status != "completed") {
      out.problems.push_back({{"id", id}, {"variant", variant}, {"seed", run["seed"]},
                              {"status", o.status}, {"error", o.error.empty() ? Json() : Json(o.error)}});
      continue;
    }
    const double acc = o.result.value("test_accuracy", 0.0);
    v.accuracy.push_back(acc);
    v.seconds.push_back(o.train_seconds);
    v.speed.push_back(o.result.value("images_per_second", 0.0));
    v.parameters = o.result.value("parameters", int64_t(0));
    v.results.push_back({{"seed", run["seed"]}, {"id", id}, {"test_accuracy", acc}});
    // Few-shot linear evaluation at the end of the run (train.fewshot): one column per K.
    const Json shots = o.result.contains("fewshot") && o.result["fewshot"].is_object()
                           ? o.result["fewshot"].value("shots", Json::object())
                           : Json::object();
    for (const auto& [k, r] : shots.items()) v.fewshot[std::stoll(k)].push_back(r.value("mean", 0.0));
  }
  return out;
}

// Fills the row's difference and Welch test against the variant's baseline; returns the note.
std::string compare_to_baseline(Json& row, const Json& variant, const VariantRuns& v,
                                const std::map<std::string, VariantRuns>& by_variant) {
  if (variant["compare_to"].is_null()) return v.accuracy.empty() ? "reference, no results" : "reference";
  if (v.accuracy.empty()) return "no results";
  const auto it = by_variant.find(variant["compare_to"].get<std::string>());
  const std::vector<double> empty;
  const std::vector<double>& ref = it == by_variant.end() ? empty : it->second.accuracy;
  if (ref.empty()) return "no baseline result";
  row["diff"] = stats::mean(v.accuracy) - stats::mean(ref);
  const auto w = stats::welch_t_test(v.accuracy, ref);
  if (!w) return (v.accuracy.size() < 2 || ref.size() < 2) ? "n<2" : "std=0";
  row["t"] = w->t;
  row["df"] = w->df;
  row["p_value"] = w->p;
  return significance_note(w->p);
}

// One variant's row: its runs' mean and spread, and the comparison with its baseline.
Json summary_row(const Json& variant, const std::map<std::string, VariantRuns>& by_variant) {
  const std::string key = variant["key"].get<std::string>();
  const auto found = by_variant.find(key);
  const VariantRuns none;
  const VariantRuns& v = found == by_variant.end() ? none : found->second;
  const size_t n = v.accuracy.size();
  Json row = {{"variant", key},
              {"kind", variant["kind"]},
              {"overrides", variant["overrides"]},
              {"compared_to", variant["compare_to"]},
              {"runs", v.planned},
              {"n", n},
              {"results", v.results},
              {"mean", n ? Json(stats::mean(v.accuracy)) : Json()},
              {"std", optional_number(stats::sample_std(v.accuracy))},
              {"diff", Json()},
              {"t", Json()},
              {"df", Json()},
              {"p_value", Json()},
              {"parameters", n ? Json(v.parameters) : Json()},
              {"train_seconds", n ? Json(stats::mean(v.seconds)) : Json()},
              {"images_per_second", n ? Json(stats::mean(v.speed)) : Json()}};
  Json fewshot = Json::object();
  for (const auto& [k, values] : v.fewshot)
    fewshot[std::to_string(k)] = {{"mean", stats::mean(values)},
                                  {"std", optional_number(stats::sample_std(values))}, {"n", values.size()}};
  row["fewshot"] = fewshot;
  row["note"] = compare_to_baseline(row, variant, v, by_variant);
  return row;
}
}  // namespace

Json build_summary(const Json& manifest, const std::string& sweep_dir) {
  const SweepRuns runs = collect_runs(manifest, sweep_dir);
  Json rows = Json::array();
  for (const auto& variant : manifest["variants"]) rows.push_back(summary_row(variant, runs.by_variant));
  Json totals = Json::object();
  for (const auto& [k, c] : runs.counts) totals[k] = c;
  totals["planned"] = manifest["runs"].size();
  return Json{{"sweep", manifest["name"]},
              {"description", manifest["description"]},
              {"claim", manifest.value("claim", Json())},
              {"command", manifest.value("command", Json())},
              {"expected", check_expected(manifest.value("expected", Json()), rows)},
              {"metric", "test_accuracy"},
              {"compare_to", manifest["compare_to"]},
              {"shared_axes", manifest.value("shared_axes", Json::array())},
              {"runs", totals},
              {"rows", rows},
              {"problems", runs.problems}};
}

namespace {
std::string percent(const Json& v, int decimals = 2) {
  return v.is_null() ? "-" : fmt::format("{:.{}f}", 100.0 * v.get<double>(), decimals);
}

std::string count_text(int64_t n) {
  if (n >= 1000000) return fmt::format("{:.2f}M", double(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.1f}k", double(n) / 1e3);
  return std::to_string(n);
}

std::string table_text(const std::vector<std::vector<std::string>>& cells) {
  std::vector<size_t> width(cells.front().size(), 3);
  for (const auto& row : cells)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    out += "|";
    for (size_t c = 0; c < row.size(); ++c) out += fmt::format(" {:<{}} |", row[c], width[c]);
    out += "\n";
  };
  line(cells.front());
  std::vector<std::string> rule;
  for (size_t c = 0; c < width.size(); ++c) rule.push_back(std::string(width[c], '-'));
  line(rule);
  for (size_t r = 1; r < cells.size(); ++r) line(cells[r]);
  return out;
}

std::string csv_field(const Json& v) {
  if (v.is_null()) return "";
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string expected_text(const Json& summary) {
  const Json& e = summary.value("expected", Json());
  if (!e.is_object()) return "";
  const bool diff = e["metric"] == "diff_pts";
  const std::string what = fmt::format("{}, tolerance ±{:.2f}", diff ? "Δ from the baseline row, points"
                                                                     : "test accuracy %", e["tolerance"].get<double>());
  if (e["checks"].empty())
    return fmt::format("\nExpected ({}): {}.\n", what, e["measured_on"].get<std::string>());
  int within = 0, outside = 0, missing = 0;
  for (const auto& c : e["checks"])
    (c["measured"].is_null() ? missing : c["within_tolerance"].get<bool>() ? within : outside)++;
  return fmt::format("\nExpected ({}; measured on {}):\n\n{}\n{} of {} within the tolerance{}{}.\n", what,
                     e["measured_on"].get<std::string>(), table_text(expected_cells(summary)), within,
                     e["checks"].size(), outside ? fmt::format(", {} outside", outside) : "",
                     missing ? fmt::format(", {} without a result", missing) : "");
}
}  // namespace

std::vector<std::vector<std::string>> expected_cells(const Json& summary) {
  const Json& e = summary.value("expected", Json());
  if (!e.is_object() || e["checks"].empty()) return {};
  const char* value_format = e["metric"] == "diff_pts" ? "{:+.2f}" : "{:.2f}";
  std::vector<std::vector<std::string>> cells = {
      {"row", "expected", "measured", "deviation", fmt::format("within ±{:.2f}", e["tolerance"].get<double>())}};
  for (const auto& c : e["checks"]) {
    const bool has = !c["measured"].is_null();
    cells.push_back({c["variant"].get<std::string>(),
                     fmt::format(fmt::runtime(value_format), c["expected"].get<double>()),
                     has ? fmt::format(fmt::runtime(value_format), c["measured"].get<double>()) : "-",
                     has ? fmt::format("{:+.2f}", c["deviation"].get<double>()) : "-",
                     !has ? "no result" : c["within_tolerance"].get<bool>() ? "yes" : "NO"});
  }
  return cells;
}

// The K values of few-shot evaluations that any row has, ascending.
static std::vector<int64_t> fewshot_shots(const Json& summary) {
  std::set<int64_t> shots;
  for (const auto& r : summary["rows"]) {
    const Json fewshot = r.value("fewshot", Json::object());
    for (const auto& [k, v] : fewshot.items()) shots.insert(std::stoll(k));
  }
  return {shots.begin(), shots.end()};
}

std::vector<std::vector<std::string>> summary_cells(const Json& summary) {
  // With shared axes each row has its own baseline row: name it.
  const bool several_references = !summary["shared_axes"].empty();
  const std::vector<int64_t> shots = fewshot_shots(summary);
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"variant", "n", "test acc % (mean ± std)", "Δ pts", "p (Welch)",
                                   "note", "params", "train time", "img/s"};
  for (const int64_t k : shots) head.push_back(fmt::format("{}-shot %", k));
  if (several_references) head.insert(head.begin() + 3, "compared with");
  cells.push_back(head);
  for (const auto& r : summary["rows"]) {
    const std::string acc = r["mean"].is_null()
                                ? "-"
                                : percent(r["mean"]) + (r["std"].is_null() ? "" : " ± " + percent(r["std"]));
    std::string diff = "-";
    if (!r["diff"].is_null()) diff = fmt::format("{:+.2f}", 100.0 * r["diff"].get<double>());
    std::vector<std::string> row = {
        r["variant"].get<std::string>(),
        r["n"].get<int64_t>() == r["runs"].get<int64_t>()
            ? std::to_string(r["n"].get<int64_t>())
            : fmt::format("{}/{}", r["n"].get<int64_t>(), r["runs"].get<int64_t>()),
        acc,
        diff,
        r["p_value"].is_null() ? "-" : fmt::format("{:.3g}", r["p_value"].get<double>()),
        r["note"].get<std::string>(),
        r["parameters"].is_null() ? "-" : count_text(r["parameters"].get<int64_t>()),
        r["train_seconds"].is_null() ? "-" : format_duration(r["train_seconds"].get<double>()),
        r["images_per_second"].is_null() ? "-" : fmt::format("{:.0f}", r["images_per_second"].get<double>())};
    for (const int64_t k : shots) {
      const Json f = r.value("fewshot", Json::object()).value(std::to_string(k), Json());
      row.push_back(f.is_null() ? "-"
                                : percent(f["mean"]) + (f["std"].is_null() ? "" : " ± " + percent(f["std"])));
    }
    if (several_references)
      row.insert(row.begin() + 3, r["compared_to"].is_null() ? "-" : r["compared_to"].get<std::string>());
    cells.push_back(row);
  }
  return cells;
}

std::string summary_table(const Json& summary) {
  const bool several_references = !summary["shared_axes"].empty();
  std::string out = table_text(summary_cells(summary));
  const Json& rows = summary["rows"];
  if (!rows.empty() && !several_references)
    out += fmt::format("\nΔ and p: each row against {} (Welch's t-test over seeds, two-sided).\n",
                       rows[0]["variant"].get<std::string>());
  out += expected_text(summary);
  if (!summary["problems"].empty()) {
    out += "\nRuns that did not complete:\n";
    for (const auto& p : summary["problems"])
      out += fmt::format("- {}: {}{}\n", p["id"].get<std::string>(), p["status"].get<std::string>(),
                         p["error"].is_null() ? "" : ": " + p["error"].get<std::string>());
  }
  return out;
}

std::string summary_csv(const Json& summary) {
  const std::vector<std::string> columns = {"variant", "kind", "compared_to", "runs", "n", "mean",
                                            "std", "diff", "p_value", "note", "parameters",
                                            "train_seconds", "images_per_second"};
  std::string out;
  for (size_t c = 0; c < columns.size(); ++c) out += (c ? "," : "") + columns[c];
  const std::vector<int64_t> shots = fewshot_shots(summary);
  for (const int64_t k : shots) out += fmt::format(",fewshot_{}_mean,fewshot_{}_std", k, k);
  out += "\n";
  for (const auto& r : summary["rows"]) {
    for (size_t c = 0; c < columns.size(); ++c) out += (c ? "," : "") + csv_field(r[columns[c]]);
    for (const int64_t k : shots) {
      const Json f = r.value("fewshot", Json::object()).value(std::to_string(k), Json());
      out += "," + csv_field(f.is_null() ? Json() : f["mean"]) + "," + csv_field(f.is_null() ? Json() : f["std"]);
    }
    out += "\n";
  }
  return out;
}

void write_summary_files(const Json& summary, const std::string& sweep_dir) {
  const fs::path dir(sweep_dir);
  write_json_file_atomic((dir / "summary.json").string(), summary);
  write_file_atomic((dir / "summary.csv").string(), summary_csv(summary));
  const Json& r = summary["runs"];
  std::string md = fmt::format("# Sweep {}\n\n{}\n\n", summary["sweep"].get<std::string>(),
                               summary["description"].get<std::string>());
  if (summary.value("claim", Json()).is_string())
    md += fmt::format("Claim: {}\n\nCommand: `{}`\n\n", summary["claim"].get<std::string>(),
                      summary["command"].get<std::string>());
  md += fmt::format("Runs: {} planned, {} completed, {} diverged, {} failed, {} interrupted, {} not "
                    "started. Test accuracy in percent; ± is the sample standard deviation over "
                    "seeds.\n\n",
                    r["planned"].get<int>(), r["completed"].get<int>(), r["diverged"].get<int>(),
                    r["failed"].get<int>(), r["interrupted"].get<int>(), r["pending"].get<int>());
  md += summary_table(summary);
  write_file_atomic((dir / "summary.md").string(), md);
}

}  // namespace vitlab
