// The report's chart sections, each an HTML fragment with its SVG inline (report/report.h).
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"
#include "report/run_files.h"

namespace vitlab {

// Every row's mean test accuracy with ± the std over seeds; the dashed line is the reference row.
std::string accuracy_bar_section(const Json& summary);

// Test accuracy against training images when the rows differ in it: one line per model, each
// point a row's mean over seeds (the paper's Fig. 3/4). Empty when the sweep has no such axis.
std::string data_size_section(const Json& summary, const std::vector<RunFiles>& runs);

// Per stage, in the sweep's order ({""} without stages): training loss and accuracy per epoch
// (validation accuracy where the run has a validation split, else training accuracy; masked-patch
// accuracy for masked-patch stages; the title names which), a line per run, coloured by variant.
std::string training_curves_section(const Json& summary, const std::vector<RunFiles>& runs,
                                    const std::vector<std::string>& stages);

}  // namespace vitlab
