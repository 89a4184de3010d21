// `vitlab report`: the SVG charts (one mark per data point), the HTML pieces, a report of a real
// sweep with a training-set-size axis and a failed run, the input errors, and the page in a real
// browser (headless Chromium: a screenshot that is not blank, an empty console).
#include <cstdlib>
#include <regex>
#include <set>

#include "config/json_reader.h"
#include "core/cuda_util.h"
#include "report/html.h"
#include "report/svg_chart.h"
#include "test_helpers.h"

#include <stb/stb_image.h>  // compiled in lib/data

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The <svg> elements of a page whose title (first <text>) contains `title`.
std::vector<std::string> charts_titled(const std::string& html, const std::string& title) {
  std::vector<std::string> out;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    const std::string svg = html.substr(at, html.find("</svg>", at) - at);
    const size_t t = svg.find("<text");
    if (contains(svg.substr(t, svg.find("</text>", t) - t), title)) out.push_back(svg);
  }
  return out;
}

size_t marks(const std::string& svg) { return count(svg, "class=\"mark\""); }

}  // namespace

TEST_CASE("SVG charts draw exactly one mark per data point", "[report]") {
  BarChart bars;
  bars.title = "acc";
  bars.labels = {"a", "b<script>", "c", "d", "e"};
  bars.values = {90.1, 88.0, 91.5, 70.0, 89.9};
  bars.errors = {0.3, std::nullopt, 1.2, 0.0, 0.5};
  bars.reference = 90.1;
  const std::string b = svg_bar_chart(bars);
  CHECK(marks(b) == 5);
  CHECK(count(b, "<rect class=\"mark\"") == 5);
  CHECK(count(b, "stroke=\"#222\"") == 3);  // error bars only where the std is known and above 0
  CHECK(count(b, "stroke-dasharray") == 1);
  CHECK_FALSE(contains(b, "<script>"));
  CHECK(contains(b, "b&lt;script&gt;"));

  LineChart lines;
  lines.series = {{"one", {1, 2, 3, 4}, {0.5, 0.4, 0.3, 0.2}, 0},
                  {"two", {1, 2, 3}, {0.6, std::nan(""), 0.4}, 1},  // a non-finite loss is no point
                  {"two", {1, 2}, {0.7, 0.6}, 1, true, false}};     // a second seed, one legend entry
  const std::string l = svg_line_chart(lines);
  CHECK(marks(l) == 4 + 2 + 2);
  CHECK(count(l, "<polyline") == 3);
  CHECK(count(l, ">one</text>") == 1);
  CHECK(count(l, ">two</text>") == 1);

  LineChart log_x;
  log_x.log_x = true;
  log_x.series = {{"vit", {1000, 5000, 20000, 60000}, {70, 80, 85, 90}, 0},
                  {"bit", {1000, 5000, 20000, 60000}, {80, 86, 90, 94}, 1}};
  const std::string x = svg_line_chart(log_x);
  CHECK(marks(x) == 8);
  for (const char* tick : {">1k<", ">2k<", ">5k<", ">10k<", ">20k<", ">50k<"}) CHECK(contains(x, tick));
}

TEST_CASE("chart ticks, numbers and the HTML pieces", "[report]") {
  const auto t = nice_ticks(0.62, 0.91);
  REQUIRE(t.size() >= 3);
  CHECK(t.front() <= 0.62);
  CHECK(t.back() >= 0.91);
  for (size_t i = 2; i < t.size(); ++i) CHECK(t[i] - t[i - 1] == Approx(t[1] - t[0]));
  CHECK(nice_ticks(60, 95, 5) == std::vector<double>{60, 70, 80, 90, 100});
  CHECK(chart_number(60000, 4, true) == "60k");
  CHECK(chart_number(1500, 4, true) == "1.5k");
  CHECK(chart_number(85.1234) == "85.12");
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
  CHECK(escape_html("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
  const std::string table = html_table({{"h1", "h2"}, {"x<y", "2"}});
  CHECK(contains(table, "<th>h1</th><th class=\"num\">h2</th>"));
  CHECK(contains(table, "<td>x&lt;y</td><td class=\"num\">2</td>"));
}

TEST_CASE("a sweep's report: the table, one bar per row, data-size lines, curves, analysis, failures",
          "[report][cli]") {
  TempDir dir;
  const std::string out = dir.file("out");
  Json j = test::tiny_sweep(2);
  j["grid"] = {{"data.synthetic_train", {128, 256}}};
  j["shared_axes"] = {"data.synthetic_train"};
  j["seeds"] = {0};
  j["variants"] = {{"broken", {{"data.dataset", "mnist-format"}, {"data.path", dir.file("no-data")}}}};
  test::write_text(dir.file("s.json"), j.dump(2));
  const auto r = run_vitlab("sweep " + dir.file("s.json") + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 1);  // the broken run failed; the report is written all the same
  CHECK(contains(r.output, "\nreport: " + out + "/report.html\n"));
  const std::string html = test::read_text(out + "/report.html");
  CHECK(contains(html, "<h1>Sweep s</h1>"));
  CHECK(contains(html, "a test claim (Table 0)"));

  // 4 rows with results (2 sizes x ViT and the deeper baseline); the broken variant has none.
  const Json summary = Json::parse(test::read_text(out + "/summary.json"));
  REQUIRE(summary["rows"].size() == 6);  // with shared axes the variant runs at both sizes too
  size_t with_results = 0;
  for (const auto& row : summary["rows"]) with_results += row["mean"].is_null() ? 0 : 1;
  CHECK(with_results == 4);
  const auto bars = charts_titled(html, "Test accuracy by variant");
  REQUIRE(bars.size() == 1);
  CHECK(marks(bars[0]) == with_results);

  const auto size_chart = charts_titled(html, "against training-set size");
  REQUIRE(size_chart.size() == 1);
  CHECK(marks(size_chart[0]) == 4);
  CHECK(count(size_chart[0], "<polyline") == 2);  // the ViT and the baseline
  CHECK(contains(size_chart[0], ">baseline=deeper (vit_tiny_p4_28)</text>"));

  // Curves: 2 epochs for each of the 4 completed runs (the failed ones have no metrics).
  const auto loss = charts_titled(html, "Training loss");
  const auto acc = charts_titled(html, "Accuracy per epoch: train_accuracy");
  REQUIRE(loss.size() == 1);
  REQUIRE(acc.size() == 1);
  CHECK(marks(loss[0]) == 8);
  CHECK(marks(acc[0]) == 8);

  // Analysis of each variant's best run, with the attention distance as an SVG (one mark per
  // head and layer: 2 heads x 1 layer for the ViT, 2 x 2 for the deeper baseline).
  const auto distance = charts_titled(html, "Mean attention distance");
  REQUIRE(distance.size() == 4);
  CHECK(marks(distance[0]) + marks(distance[1]) + marks(distance[2]) + marks(distance[3]) == 2 * 2 + 4 * 2);
  CHECK(fs::is_regular_file(out + "/analysis/synthetic_train=128/analysis.json"));
  CHECK(fs::is_regular_file(out + "/analysis/baseline=deeper__synthetic_train=256/rollout.png"));
  CHECK(count(html, "src=\"data:image/png;base64,") >= 4 * 2);
  CHECK(contains(html, "no completed run") == false);  // only rows with a completed run are listed

  const std::string problems = html.substr(html.find("id=\"problems\""));
  CHECK(count(problems, "<span class=\"bad\">failed</span>") == 2);
  CHECK(contains(problems, "no-data"));

  // Nothing external: no http(s) URL, no script.
  CHECK_FALSE(std::regex_search(html, std::regex("(src|href)=\"https?:")));
  CHECK_FALSE(contains(html, "<script"));

  // A second report reuses the analysis (made from the same checkpoints), with the same page.
  const auto again = run_vitlab("report " + out);
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK_FALSE(contains(again.output, "analysed"));
  CHECK(test::read_text(out + "/report.html") == html);
}

TEST_CASE("report input errors exit 2 and name the folder", "[report][cli]") {
  TempDir dir;
  auto not_sweep = run_vitlab("report " + dir.path().string());
  CHECK(not_sweep.exit_code == 2);
  CHECK(contains(not_sweep.output, dir.path().string()));

  // A sweep folder with its manifest but no run folders yet.
  const std::string out = dir.file("planned");
  Json j = test::tiny_sweep();
  j["seeds"] = {0};
  test::write_text(dir.file("s.json"), j.dump());
  const auto sweep_json = run_vitlab("sweep " + dir.file("s.json") + " --out " + dir.file("real"));
  REQUIRE(sweep_json.exit_code == 0);
  fs::create_directories(out);
  fs::copy_file(dir.file("real/sweep.json"), out + "/sweep.json");
  auto empty = run_vitlab("report " + out);
  CHECK(empty.exit_code == 2);
  CHECK(contains(empty.output, out + ": the sweep has no run folders yet"));
  CHECK_FALSE(fs::exists(out + "/report.html"));

  // An output that cannot be written: its folder would have to be made inside a file.
  test::write_text(dir.file("a_file"), "x");
  auto unwritable = run_vitlab("report " + dir.file("real") + " --out " + dir.file("a_file/report.html"));
  CHECK(unwritable.exit_code == 2);
  CHECK(contains(unwritable.output, dir.file("a_file")));
  auto bad_images = run_vitlab("report " + dir.file("real") + " --images 0");
  CHECK(bad_images.exit_code == 2);
}

namespace {

struct BrowserResult {
  int exit_code;
  std::string log;
  std::string screenshot;
};

// Opens `page` in headless Chromium (Debian's `chromium`, installed by `make test`) and takes a
// screenshot; the log holds what the page printed to its console.
BrowserResult open_in_chromium(const std::string& page, const TempDir& dir) {
  BrowserResult b{0, "", dir.file("shot.png")};
  const std::string log = dir.file("chromium.log");
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
                          "--enable-logging=stderr --v=0 --window-size=1280,1600 --user-data-dir=" + dir.file("profile") +
                          " --screenshot=" + b.screenshot + " 'file://" + page + "' > " + log + " 2>&1";
  b.exit_code = std::system(cmd.c_str());
  b.log = test::read_text(log);
  return b;
}

// Distinct colours in the screenshot's pixels, up to 64: a blank page has one.
int distinct_colours(const std::string& png) {
  int w = 0, h = 0, c = 0;
  unsigned char* pixels = stbi_load(png.c_str(), &w, &h, &c, 3);
  REQUIRE(pixels != nullptr);
  std::set<uint32_t> colours;
  for (int i = 0; i < w * h && colours.size() < 64; ++i)
    colours.insert(uint32_t(pixels[3 * i]) << 16 | uint32_t(pixels[3 * i + 1]) << 8 | pixels[3 * i + 2]);
  stbi_image_free(pixels);
  return int(colours.size());
}

}  // namespace

TEST_CASE("the report renders in headless Chromium: a screenshot that is not blank, an empty console",
          "[report][browser]") {
  // `make test` installs Chromium on Debian; the GPU machine has no Debian packages.
  if (cuda::built_with_cuda() && std::system("command -v chromium > /dev/null") != 0) {
    WARN("no chromium on this machine: skipped");
    return;
  }
  REQUIRE(std::system("command -v chromium > /dev/null") == 0);
  TempDir dir;
  const std::string out = dir.file("out");
  Json j = test::tiny_sweep(2);
  j["seeds"] = {0};
  test::write_text(dir.file("s.json"), j.dump(2));
  const auto r = run_vitlab("sweep " + dir.file("s.json") + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  const BrowserResult b = open_in_chromium(out + "/report.html", dir);
  INFO(b.log);
  REQUIRE(b.exit_code == 0);
  REQUIRE(fs::is_regular_file(b.screenshot));
  CHECK(distinct_colours(b.screenshot) > 16);  // text, bars, lines and figures, not a blank page
  CHECK_FALSE(contains(b.log, ":CONSOLE"));

  // The console check sees a page's errors: a page that logs one is caught.
  test::write_text(dir.file("noisy.html"),
                   "<!DOCTYPE html><html><body><p>x</p><script>console.error('broken page')</script></body></html>");
  fs::remove(b.screenshot);
  const BrowserResult noisy = open_in_chromium(dir.file("noisy.html"), dir);
  CHECK(contains(noisy.log, ":CONSOLE"));
  CHECK(contains(noisy.log, "broken page"));
}
