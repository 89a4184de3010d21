// Summary statistics against hand-computed values, and the summary built from hand-made run
// folders (no training): rows, means, sample std, Welch p-values, notes, problems, CSV.
#include <filesystem>

#include "core/atomic_file.h"
#include "experiment/manifest.h"
#include "experiment/stats.h"
#include "experiment/summary.h"
#include "test_helpers.h"

using namespace vitlab;
using test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("regularized incomplete beta and Student-t tails match known values", "[sweep][stats]") {
  // I_0.5(2, 3) = sum_{j=2..4} C(4, j) / 16 = 11/16.
  CHECK(stats::incomplete_beta(2, 3, 0.5) == Approx(0.6875).epsilon(1e-12));
  CHECK(stats::incomplete_beta(1, 1, 0.3) == Approx(0.3).epsilon(1e-12));
  CHECK(stats::incomplete_beta(1, 4, 0.3) == Approx(1 - std::pow(0.7, 4)).epsilon(1e-12));
  CHECK(stats::incomplete_beta(5, 2, 0.9) == Approx(1 - stats::incomplete_beta(2, 5, 0.1)).epsilon(1e-12));
  CHECK(stats::incomplete_beta(3, 3, 0.0) == 0.0);
  CHECK(stats::incomplete_beta(3, 3, 1.0) == 1.0);
  CHECK_THROWS(stats::incomplete_beta(0, 1, 0.5));

  CHECK(stats::student_t_two_sided_p(2.0, 10) == Approx(0.07339).margin(5e-6));
  CHECK(stats::student_t_two_sided_p(-2.0, 10) == Approx(0.07339).margin(5e-6));
  CHECK(stats::student_t_two_sided_p(1.0, 1) == Approx(0.5).epsilon(1e-10));  // Cauchy
  CHECK(stats::student_t_two_sided_p(0.0, 7) == Approx(1.0));
  CHECK(stats::student_t_two_sided_p(2.228139, 10) == Approx(0.05).margin(1e-6));  // t table
  CHECK(stats::student_t_two_sided_p(12.706205, 1) == Approx(0.05).margin(1e-6));
  CHECK(stats::student_t_two_sided_p(1.959964, 1e7) == Approx(0.05).margin(1e-5));  // normal
  CHECK(stats::student_t_two_sided_p(40.0, 4.5) < 1e-5);
}

TEST_CASE("mean, sample std and Welch's t-test against hand-computed values", "[sweep][stats]") {
  CHECK(stats::mean({1, 2, 3, 4}) == Approx(2.5));
  CHECK(*stats::sample_std({1, 2, 3, 4}) == Approx(std::sqrt(5.0 / 3.0)));
  CHECK_FALSE(stats::sample_std({0.5}).has_value());
  // a: mean 0.82, std 0.01; b: mean 0.785, std 0.0129099.
  const std::vector<double> a = {0.81, 0.83, 0.82}, b = {0.78, 0.80, 0.79, 0.77};
  const auto w = stats::welch_t_test(a, b);
  REQUIRE(w.has_value());
  CHECK(w->t == Approx(4.0414519).epsilon(1e-6));
  CHECK(w->df == Approx(4.9591837).epsilon(1e-6));
  CHECK(w->p == Approx(0.0100769).epsilon(1e-4));
  CHECK(stats::welch_t_test(b, a)->t == Approx(-w->t));
  CHECK_FALSE(stats::welch_t_test({0.8}, b).has_value());          // n < 2
  CHECK_FALSE(stats::welch_t_test({0.8, 0.8}, {0.7, 0.7}).has_value());  // no spread
}

namespace {
void write_result(const fs::path& dir, const Json& result) {
  fs::create_directories(dir);
  write_json_file_atomic((dir / "result.json").string(), result);
}

Json completed(double accuracy) {
  return {{"status", "completed"}, {"test_accuracy", accuracy}, {"parameters", 12345},
          {"train_seconds", 10.0}, {"images_per_second", 100.0}};
}
}  // namespace

TEST_CASE("the summary pools seeds per variant and compares with the baseline", "[sweep][summary]") {
  TempDir dir;
  const Json manifest = {
      {"format", kManifestFormat}, {"name", "hand"}, {"description", "hand-made"},
      {"compare_to", "bit"}, {"shared_axes", Json::array()}, {"stages", Json::array()},
      {"variants", Json::array({
          {{"key", "baseline=bit"}, {"kind", "baseline"}, {"overrides", Json::object()}, {"compare_to", nullptr}},
          {{"key", "lr=0.1"}, {"kind", "grid"}, {"overrides", {{"train.lr", 0.1}}}, {"compare_to", "baseline=bit"}},
          {{"key", "lr=1"}, {"kind", "grid"}, {"overrides", {{"train.lr", 1}}}, {"compare_to", "baseline=bit"}}})},
      {"runs", Json::array()}};
  Json m = manifest;
  const std::vector<double> bit = {0.78, 0.80, 0.79, 0.77}, vit = {0.81, 0.83, 0.82};
  for (size_t s = 0; s < 4; ++s) {
    const std::string b = fmt::format("baseline=bit__seed={}", s), v = fmt::format("lr=0.1__seed={}", s),
                      x = fmt::format("lr=1__seed={}", s);
    m["runs"].push_back({{"id", b}, {"variant", "baseline=bit"}, {"seed", s}});
    m["runs"].push_back({{"id", v}, {"variant", "lr=0.1"}, {"seed", s}});
    m["runs"].push_back({{"id", x}, {"variant", "lr=1"}, {"seed", s}});
    write_result(dir.path() / "runs" / b, completed(bit[s]));
    if (s < 3) write_result(dir.path() / "runs" / v, completed(vit[s]));
    else write_result(dir.path() / "runs" / v, {{"status", "failed"}, {"error", "boom"}});
    if (s == 0) write_result(dir.path() / "runs" / x, completed(0.5));
    if (s == 1) write_result(dir.path() / "runs" / x, {{"status", "diverged"}, {"error", "loss became nan"}});
    if (s == 2) {  // started, never finished
      fs::create_directories(dir.path() / "runs" / x);
      test::write_text((dir.path() / "runs" / x / "config.json").string(), "{}");
    }
  }
  const Json summary = build_summary(m, dir.path().string());
  const Json& rows = summary["rows"];
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["variant"] == "baseline=bit");
  CHECK(rows[0]["note"] == "reference");
  CHECK(rows[0]["n"] == 4);
  CHECK(rows[0]["mean"].get<double>() == Approx(0.785));
  CHECK(rows[0]["std"].get<double>() == Approx(0.0129099).epsilon(1e-5));
  CHECK(rows[0]["diff"].is_null());
  CHECK(rows[1]["n"] == 3);
  CHECK(rows[1]["runs"] == 4);
  CHECK(rows[1]["mean"].get<double>() == Approx(0.82));
  CHECK(rows[1]["std"].get<double>() == Approx(0.01).epsilon(1e-6));
  CHECK(rows[1]["diff"].get<double>() == Approx(0.035));
  CHECK(rows[1]["p_value"].get<double>() == Approx(0.0100769).epsilon(1e-4));
  CHECK(rows[1]["note"] == "p<0.05");  // 0.0101: not below 0.01
  CHECK(rows[1]["parameters"] == 12345);
  CHECK(rows[1]["train_seconds"].get<double>() == Approx(10.0));
  CHECK(rows[2]["n"] == 1);
  CHECK(rows[2]["note"] == "n<2");
  CHECK(rows[2]["std"].is_null());
  CHECK(rows[2]["diff"].get<double>() == Approx(0.5 - 0.785));
  CHECK(summary["runs"]["completed"] == 8);
  CHECK(summary["runs"]["failed"] == 1);
  CHECK(summary["runs"]["diverged"] == 1);
  CHECK(summary["runs"]["interrupted"] == 1);
  CHECK(summary["runs"]["pending"] == 1);
  CHECK(summary["runs"]["planned"] == 12);
  const Json& problems = summary["problems"];
  REQUIRE(problems.size() == 4);
  CHECK(problems[0]["id"] == "lr=1__seed=1");
  CHECK(problems[0]["status"] == "diverged");
  CHECK(problems[0]["error"] == "loss became nan");

  const std::string table = summary_table(summary);
  CHECK(table.find("| lr=0.1") != std::string::npos);
  CHECK(table.find("82.00 ± 1.00") != std::string::npos);
  CHECK(table.find("+3.50") != std::string::npos);
  CHECK(table.find("lr=0.1__seed=3: failed: boom") != std::string::npos);
  const std::string csv = summary_csv(summary);
  CHECK(csv.rfind("variant,kind,compared_to,runs,n,mean,std,diff,p_value,note,", 0) == 0);
  CHECK(csv.find("\nlr=1,grid,baseline=bit,4,1,0.5,,") != std::string::npos);
}

TEST_CASE("the summary checks the sweep's expected values against the measured rows", "[sweep][summary]") {
  TempDir dir;
  Json m = {{"format", kManifestFormat}, {"name", "hand"}, {"description", "hand-made"},
            {"claim", "ViT needs more data (Fig. 3)"}, {"command", "vitlab sweep hand.json"},
            {"compare_to", "bit"}, {"shared_axes", Json::array()}, {"stages", Json::array()},
            {"variants", Json::array({
                {{"key", "baseline=bit"}, {"kind", "baseline"}, {"overrides", Json::object()}, {"compare_to", nullptr}},
                {{"key", "vit"}, {"kind", "grid"}, {"overrides", Json::object()}, {"compare_to", "baseline=bit"}},
                {{"key", "gap"}, {"kind", "variant"}, {"overrides", Json::object()}, {"compare_to", "baseline=bit"}}})},
            {"runs", {{{"id", "b"}, {"variant", "baseline=bit"}, {"seed", 0}}, {{"id", "v"}, {"variant", "vit"}, {"seed", 0}},
                      {{"id", "g"}, {"variant", "gap"}, {"seed", 0}}}},
            {"expected", {{"metric", "test_accuracy_pct"},
                          {"values", {{"baseline=bit", 85.0}, {"vit", 70.0}, {"gap", 74.0}}},
                          {"tolerance", 1.5},
                          {"measured_on", "a 2-core machine, 2026-11-26"}}}};
  write_result(dir.path() / "runs" / "b", completed(0.8555));
  write_result(dir.path() / "runs" / "v", completed(0.7240));
  write_result(dir.path() / "runs" / "g", {{"status", "failed"}, {"error", "boom"}});
  Json summary = build_summary(m, dir.path().string());
  CHECK(summary["claim"] == "ViT needs more data (Fig. 3)");
  CHECK(summary["command"] == "vitlab sweep hand.json");
  const Json& checks = summary["expected"]["checks"];
  REQUIRE(checks.size() == 3);
  // In key order: baseline=bit, gap, vit.
  CHECK(checks[0]["variant"] == "baseline=bit");
  CHECK(checks[0]["measured"].get<double>() == Approx(85.55));
  CHECK(checks[0]["deviation"].get<double>() == Approx(0.55));
  CHECK(checks[0]["within_tolerance"] == true);
  CHECK(checks[1]["variant"] == "gap");
  CHECK(checks[1]["measured"].is_null());
  CHECK(checks[1]["within_tolerance"].is_null());
  CHECK(checks[2]["variant"] == "vit");
  CHECK(checks[2]["deviation"].get<double>() == Approx(2.4));
  CHECK(checks[2]["within_tolerance"] == false);
  const std::string table = summary_table(summary);
  INFO(table);
  CHECK(table.find("Expected (test accuracy %, tolerance ±1.50; measured on a 2-core machine, 2026-11-26):") != std::string::npos);
  CHECK(table.find("| baseline=bit | 85.00    | 85.55    | +0.55     | yes           |") != std::string::npos);
  CHECK(table.find("| vit          | 70.00    | 72.40    | +2.40     | NO            |") != std::string::npos);
  CHECK(table.find("| gap          | 74.00    | -        | -         | no result     |") != std::string::npos);
  CHECK(table.find("1 of 3 within the tolerance, 1 outside, 1 without a result.") != std::string::npos);

  // Exactly at the tolerance is within it (the percent conversion's rounding does not flip it).
  m["expected"]["values"] = {{"vit", 71.0}};
  m["expected"]["tolerance"] = 1.4;
  CHECK(build_summary(m, dir.path().string())["expected"]["checks"][0]["within_tolerance"] == true);

  // diff_pts compares the row's difference from its baseline, in points.
  m["expected"] = {{"metric", "diff_pts"}, {"values", {{"vit", -13.0}}}, {"tolerance", 0.5}, {"measured_on", "x"}};
  summary = build_summary(m, dir.path().string());
  CHECK(summary["expected"]["checks"][0]["measured"].get<double>() == Approx(72.40 - 85.55));
  CHECK(summary["expected"]["checks"][0]["within_tolerance"] == true);
  CHECK(summary_table(summary).find("| vit | -13.00   | -13.15   | -0.15     | yes           |") != std::string::npos);

  // Not yet measured: one line, no table; the Markdown file carries the claim and the command.
  m["expected"] = {{"metric", "test_accuracy_pct"}, {"values", Json::object()}, {"tolerance", 1.0},
                   {"measured_on", "not yet measured"}};
  summary = build_summary(m, dir.path().string());
  CHECK(summary_table(summary).find("\nExpected (test accuracy %, tolerance ±1.00): not yet measured.\n") != std::string::npos);
  write_summary_files(summary, dir.path().string());
  const std::string md = test::read_text(dir.file("summary.md"));
  CHECK(md.rfind("# Sweep hand\n\nhand-made\n\nClaim: ViT needs more data (Fig. 3)\n\nCommand: `vitlab sweep hand.json`\n\nRuns: 3 planned", 0) == 0);

  // A manifest from before sweeps stated claims still summarizes.
  m.erase("expected");
  m.erase("claim");
  m.erase("command");
  summary = build_summary(m, dir.path().string());
  CHECK(summary["expected"].is_null());
  CHECK(summary_table(summary).find("Expected") == std::string::npos);
}
