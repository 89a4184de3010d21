#include "report/report_charts.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "report/html.h"
#include "report/svg_chart.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {

// A number from a JSON record, NaN when absent or not a number (a diverged epoch's loss is null).
double number_or_nan(const Json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : std::nan("");
}

}  // namespace

std::string accuracy_bar_section(const Json& summary) {
  BarChart c;
  c.title = "Test accuracy by variant";
  c.value_label = "test accuracy % (mean ± std over seeds)";
  int references = 0;
  for (const auto& row : summary["rows"]) {
    if (row["mean"].is_null()) continue;
    c.labels.push_back(row["variant"].get<std::string>());
    c.values.push_back(100.0 * row["mean"].get<double>());
    c.errors.push_back(row["std"].is_null() ? std::nullopt : std::optional<double>(100.0 * row["std"].get<double>()));
    const bool reference = row["compared_to"].is_null();
    c.colour_index.push_back(row["kind"] == "baseline" ? 7 : 0);
    if (reference && references++ == 0) {
      c.reference = c.values.back();
      c.reference_label = row["variant"].get<std::string>();
    }
  }
  if (references > 1) c.reference.reset();  // several references (shared axes): each row says which
  std::string out = "<h2 id=\"accuracy\">Every variant against the baseline</h2>\n";
  if (c.values.empty()) return out + "<p>No row has a completed run yet.</p>\n";
  out += svg_bar_chart(c);
  out += "<p class=\"note\">Grey bars are baselines";
  if (c.reference) out += "; the dashed line is the mean of " + escape_html(c.reference_label);
  return out + ". Error bars: ± the sample standard deviation over seeds. The axis does not start at 0.</p>\n";
}

namespace {

// The row key without its shared-axis parts ("baseline=bit__train_set=n01k" -> "baseline=bit"):
// the rows that differ only in those parts are one line of the data-size chart.
std::string line_key(const std::string& variant, const Json& shared_axes) {
  std::set<std::string> keys;
  for (const auto& a : shared_axes) {
    const std::string path = a.get<std::string>();
    keys.insert(path.substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1));
    keys.insert(path);
  }
  std::string out;
  size_t start = 0;
  while (start <= variant.size()) {
    const size_t end = std::min(variant.find("__", start), variant.size());
    const std::string part = variant.substr(start, end - start);
    if (!keys.count(part.substr(0, part.find('=')))) out += (out.empty() ? "" : "__") + part;
    start = end + 2;
  }
  return out;
}

// A completed run's final-stage result for `variant`, or null.
const Json* first_result(const std::vector<RunFiles>& runs, const std::string& variant) {
  for (const auto& r : runs)
    if (r.variant == variant && r.stages.back().result.is_object() &&
        r.stages.back().result.value("status", "") == "completed")
      return &r.stages.back().result;
  return nullptr;
}

}  // namespace

std::string data_size_section(const Json& summary, const std::vector<RunFiles>& runs) {
  std::map<std::string, Series> lines;  // by line key
  std::map<std::string, std::set<int64_t>> sizes;
  for (const auto& row : summary["rows"]) {
    const std::string variant = row["variant"].get<std::string>();
    const Json* result = first_result(runs, variant);
    if (row["mean"].is_null() || !result || !result->contains("train_images")) continue;
    const std::string key = line_key(variant, summary["shared_axes"]);
    Series& s = lines[key];
    if (s.name.empty()) {
      const std::string model = result->value("config", Json::object()).value("model", Json::object()).value("name", "");
      s.name = (key.empty() ? std::string("grid") : key) + (model.empty() ? "" : " (" + model + ")");
      s.colour = lines.size() - 1;
    }
    const int64_t n = (*result)["train_images"].get<int64_t>();
    s.x.push_back(double(n));
    s.y.push_back(100.0 * row["mean"].get<double>());
    sizes[key].insert(n);
  }
  bool varies = false;
  for (const auto& [key, set] : sizes) varies = varies || set.size() > 1;
  if (!varies) return "";
  LineChart c;
  c.title = "Test accuracy against training-set size";
  c.x_label = "training images (log scale)";
  c.y_label = "test accuracy % (mean over seeds)";
  c.log_x = true;
  c.width = 640;
  for (auto& entry : lines) {
    const Series& s = entry.second;  // a named reference: C++17 lambdas cannot capture bindings
    // Join the points left to right.
    std::vector<size_t> order(s.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    Series sorted{s.name, {}, {}, s.colour};
    for (const size_t i : order) sorted.x.push_back(s.x[i]), sorted.y.push_back(s.y[i]);
    c.series.push_back(sorted);
  }
  return "<h2 id=\"data-size\">Accuracy against training-set size</h2>\n" + svg_line_chart(c) +
         "<p class=\"note\">The paper's Fig. 3/4 in miniature: the ResNet's inductive bias should win on small "
         "data.</p>\n";
}

namespace {

const StageFiles* find_stage(const RunFiles& r, const std::string& name) {
  for (const auto& s : r.stages)
    if (s.name == name) return &s;
  return nullptr;
}

// The accuracy a run's stage measured per epoch: on the validation split where it has one, else
// on the training batches; masked-patch accuracy for a masked-patch stage.
const char* accuracy_key(const StageFiles& stage) {
  for (const char* key : {"val_accuracy", "val_masked_accuracy", "train_accuracy", "train_masked_accuracy"})
    for (const auto& e : stage.epochs)
      if (e.contains(key) && e[key].is_number()) return key;
  return "train_accuracy";
}

std::string stage_curves(const std::vector<RunFiles>& runs, const std::string& stage_name,
                         const std::map<std::string, size_t>& colour) {
  const std::string suffix = stage_name.empty() ? "" : " (stage " + stage_name + ")";
  LineChart loss, acc;
  loss.title = "Training loss" + suffix;
  loss.x_label = acc.x_label = "epoch";
  loss.y_label = "training loss";
  acc.y_label = "accuracy %";
  acc.y_max = 100;
  std::set<std::string> in_legend, keys;
  for (const auto& r : runs) {
    const StageFiles* stage = find_stage(r, stage_name);
    if (!stage || stage->epochs.empty()) continue;
    const auto& epochs = stage->epochs;
    const char* acc_key = accuracy_key(*stage);
    keys.insert(acc_key);
    const bool first = in_legend.insert(r.variant).second;
    Series l{r.variant, {}, {}, colour.at(r.variant), true, first};
    Series a = l;
    for (const auto& e : epochs) {
      const double epoch = number_or_nan(e, "epoch");
      l.x.push_back(epoch), l.y.push_back(number_or_nan(e, "train_loss"));
      a.x.push_back(epoch), a.y.push_back(100.0 * number_or_nan(e, acc_key));
    }
    loss.series.push_back(l);
    acc.series.push_back(a);
  }
  if (loss.series.empty()) return "";
  // The title names what was measured (runs of one stage may differ: supervised or masked patch).
  std::string measured;
  for (const auto& k : keys) measured += (measured.empty() ? "" : ", ") + k;
  acc.title = "Accuracy per epoch: " + measured + suffix;
  return "<div class=\"figures\">\n" + svg_line_chart(loss) + svg_line_chart(acc) + "</div>\n";
}

}  // namespace

std::string training_curves_section(const Json& summary, const std::vector<RunFiles>& runs,
                                    const std::vector<std::string>& stages) {
  std::string out = "<h2 id=\"curves\">Training curves</h2>\n"
                    "<p class=\"note\">From each run's metrics.jsonl: one line per run, the seeds of a variant in "
                    "its colour. Epochs whose loss was not finite are left out.</p>\n";
  std::map<std::string, size_t> colour;
  for (const auto& row : summary["rows"]) colour.emplace(row["variant"].get<std::string>(), colour.size());
  std::string charts;
  for (const auto& s : stages) charts += stage_curves(runs, s, colour);
  return out + (charts.empty() ? "<p>No run has finished an epoch yet.</p>\n" : charts);
}

}  // namespace vitlab
