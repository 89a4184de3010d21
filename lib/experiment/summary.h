// A sweep's summary, rebuilt from the manifest and the run folders alone (so `vitlab summarize`
// reproduces what `vitlab sweep` wrote, byte for byte): one row per variant with test accuracy
// mean ± sample std over seeds, the difference from the baseline's mean with Welch's t-test, the
// model size, training time and speed; runs that did not complete are listed with their errors.
// The sweep's claim and command are repeated, and each expected value is checked: the row's
// measured value, the deviation and whether it is within the tolerance ("expected.checks").
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

Json build_summary(const Json& manifest, const std::string& sweep_dir);

// summary.json, summary.csv and summary.md in `sweep_dir`, written atomically.
void write_summary_files(const Json& summary, const std::string& sweep_dir);

// The table (Markdown, columns padded so it also reads as plain text) and the list of runs that
// did not complete: what is printed at the end of a sweep.
std::string summary_table(const Json& summary);

// The cells of that table, header row first (`vitlab report` draws the same table in HTML): a
// "compared with" column when rows have their own baselines (shared axes), one per few-shot K.
std::vector<std::vector<std::string>> summary_cells(const Json& summary);

// The expected-value checks as a table, header row first; empty when the sweep states none.
std::vector<std::vector<std::string>> expected_cells(const Json& summary);

std::string summary_csv(const Json& summary);

// "p<0.01", "p<0.05", "n.s.", "n<2", ... for a row.
std::string significance_note(double p);

}  // namespace vitlab
