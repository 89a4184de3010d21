#include "report/report_analysis.h"

#include <filesystem>

#include "analysis/analyze.h"
#include "core/error.h"
#include "report/html.h"
#include "report/svg_chart.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {

// analysis.json of this run's checkpoint, not older than the checkpoint. `tail` is the
// checkpoint's path below the sweep folder, so a moved or published folder still matches.
Json usable_analysis(const fs::path& dir, const fs::path& checkpoint, const std::string& tail) {
  const fs::path file = dir / "analysis.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return Json();
  Json a;
  try {
    a = read_json_file(file.string());
  } catch (const UserError&) {
    return Json();  // unreadable: made again below
  }
  const std::string source = a.value("checkpoint", std::string());
  if (source.size() < tail.size() || source.compare(source.size() - tail.size(), tail.size(), tail) != 0)
    return Json();
  if (!fs::exists(checkpoint, ec)) return a;  // a published folder: the copy is all there is
  return fs::last_write_time(file, ec) >= fs::last_write_time(checkpoint, ec) ? a : Json();
}

// The best completed run of a summary row: highest test accuracy, first seed on ties.
const Json* best_result(const Json& row) {
  const Json* best = nullptr;
  for (const auto& r : row["results"])
    if (!best || r["test_accuracy"].get<double>() > (*best)["test_accuracy"].get<double>()) best = &r;
  return best;
}

VariantAnalysis analyze_variant(const Json& row, const std::vector<RunFiles>& runs, const std::string& sweep_dir,
                                const ReportAnalysisOptions& o, std::FILE* log) {
  VariantAnalysis v;
  v.variant = row["variant"].get<std::string>();
  v.dir = (fs::path(sweep_dir) / "analysis" / v.variant).string();
  const Json* best = best_result(row);
  if (!best) {
    v.note = "no completed run";
    return v;
  }
  v.run_id = (*best)["id"].get<std::string>();
  v.test_accuracy = (*best)["test_accuracy"].get<double>();
  // The final stage's checkpoint produced the run's test accuracy, so its result.json exists.
  const StageFiles& stage = find_run(runs, v.run_id)->stages.back();
  if (stage.result.value("config", Json::object()).value("model", Json::object()).value("family", "") == "resnet") {
    v.note = "not analysed: the BiT ResNet has no patch tokens, attention or position embedding";
    return v;
  }
  std::error_code ec;
  const fs::path checkpoint = fs::path(stage.dir) / "checkpoints" / "last.pt";
  const std::string tail = fs::relative(checkpoint, sweep_dir).string();
  v.analysis = usable_analysis(v.dir, checkpoint, tail);
  // The same words whether the analysis is made now or reused: the page depends on the results only.
  const std::string made_from = fmt::format("figures in analysis/{}/, from {}", v.variant, tail);
  if (!v.analysis.is_null()) {
    v.note = made_from;
    return v;
  }
  if (!fs::exists(checkpoint, ec)) {
    v.note = fmt::format("no analysis: {} is not there (published results carry no checkpoints); "
                         "run `vitlab report` in the sweep's own folder", tail);
    return v;
  }
  if (!o.make) {
    v.note = fmt::format("not analysed (--no-analysis); make it with `vitlab analyze {} --out {}`",
                         checkpoint.string(), v.dir);
    return v;
  }
  AnalyzeOptions a;
  a.checkpoint = checkpoint.string();
  a.out_dir = v.dir;
  a.device = o.device;
  a.images = o.images;
  try {
    v.analysis = analyze_checkpoint(a);
    v.note = made_from;
    if (log) std::fprintf(log, "report: analysed %s (%s)\n", v.variant.c_str(), tail.c_str());
  } catch (const std::exception& e) {
    v.note = std::string("no analysis: ") + e.what();  // e.g. a corrupt checkpoint
  }
  return v;
}

}  // namespace

std::vector<VariantAnalysis> analyze_best_runs(const Json& summary, const std::vector<RunFiles>& runs,
                                               const std::string& sweep_dir, const ReportAnalysisOptions& options,
                                               std::FILE* log) {
  std::vector<VariantAnalysis> out;
  for (const auto& row : summary["rows"])
    if (!row["results"].empty()) out.push_back(analyze_variant(row, runs, sweep_dir, options, log));
  return out;
}

namespace {

// Fig. 7 right: one point per head, against depth.
std::string distance_chart(const Json& figure, const std::string& variant) {
  LineChart c;
  c.title = "Mean attention distance: " + variant;
  c.x_label = "network depth (layer)";
  c.y_label = "mean attention distance (pixels)";
  c.y_min = 0;
  const Json& d = figure["per_layer_and_head"];  // (L, H)
  const size_t heads = d.empty() ? 0 : d[0].size();
  for (size_t h = 0; h < heads; ++h) {
    Series s{fmt::format("head {}", h + 1), {}, {}, h, false};
    for (size_t l = 0; l < d.size(); ++l) {
      s.x.push_back(double(l + 1));
      s.y.push_back(d[l][h].get<double>());
    }
    c.series.push_back(s);
  }
  return svg_line_chart(c);
}

const char* figure_caption(const std::string& name) {
  if (name == "rollout") return "Attention rollout (Fig. 6): test images and the map over them";
  if (name == "pos_embed") return "Position embedding similarity (Fig. 7 centre), or the relative bias by offset";
  if (name == "filters") return "Principal components of the patch-embedding filters (Fig. 7 left)";
  return "";
}

std::string variant_figures(const VariantAnalysis& v) {
  std::string out = fmt::format("<h3 id=\"analysis-{}\">{}</h3>\n", escape_html(v.variant), escape_html(v.variant));
  if (!v.run_id.empty())
    out += fmt::format("<p>Best run <code>{}</code>, test accuracy {:.2f}%; {}.</p>\n", escape_html(v.run_id),
                       100.0 * v.test_accuracy, escape_html(v.note));
  if (v.analysis.is_null()) return out + (v.run_id.empty() ? "<p>" + escape_html(v.note) + "</p>\n" : "");
  const Json& figures = v.analysis["figures"];
  out += "<div class=\"figures\">\n";
  if (figures.contains("attention_distance")) out += distance_chart(figures["attention_distance"], v.variant);
  for (const char* name : {"rollout", "pos_embed", "filters"}) {
    if (!figures.contains(name)) continue;
    const std::string file = (fs::path(v.dir) / figures[name]["file"].get<std::string>()).string();
    std::string image;
    try {
      image = png_img_tag(file, std::string(name) + " of " + v.variant, 560);
    } catch (const UserError& e) {
      image = "<p>" + escape_html(e.what()) + "</p>";
    }
    out += fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n", image, figure_caption(name));
  }
  out += "</div>\n";
  const Json na = v.analysis.value("not_applicable", Json::object());
  if (!na.empty()) {
    out += "<ul class=\"note\">";
    for (auto it = na.begin(); it != na.end(); ++it)
      out += fmt::format("<li>{}: not applicable ({})</li>", escape_html(it.key()),
                         escape_html(it.value().get<std::string>()));
    out += "</ul>\n";
  }
  return out;
}

}  // namespace

std::string analysis_section(const std::vector<VariantAnalysis>& analyses) {
  std::string out = "<h2 id=\"analysis\">Inside the models</h2>\n"
                    "<p>The analysis figures of each variant's best run (<code>vitlab analyze</code>; the paper's "
                    "Sec. 4.5, Fig. 6, 7 and 11). The ResNet baseline has no attention or patch embedding.</p>\n";
  if (analyses.empty()) return out + "<p>No variant has a completed run.</p>\n";
  for (const auto& v : analyses) out += variant_figures(v);
  return out;
}

}  // namespace vitlab
