// SVG charts written by the project for the sweep report: no plotting library, no script, so the
// report stays one self-contained file that any browser draws.
//
// Every data point is exactly one element with class "mark" (a bar's <rect>, a point's <circle>)
// carrying a <title> with its value, which the browser shows on hover. Axes, error bars, lines,
// legends and labels never use that class, so a test can count the points of a chart.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace vitlab {

// A categorical colour for series `i` (matplotlib's tab10, cycled).
std::string chart_colour(size_t i);

// "Nice" tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi], about `count`.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

// Horizontal bars, one per category, with optional ± error bars and a dashed reference line.
struct BarChart {
  std::string title, value_label;   // value_label: the x axis, e.g. "test accuracy %"
  std::vector<std::string> labels;  // one per bar, top to bottom
  std::vector<double> values;
  std::vector<std::optional<double>> errors;  // ± (empty, or one per bar)
  std::vector<size_t> colour_index;           // empty: all colour 0
  std::optional<double> reference;            // a vertical dashed line (the baseline's mean)
  std::string reference_label;
  // The value axis starts here (nullopt: a nice value below the smallest bar minus its error):
  // accuracies of 85-95% would otherwise be bars of almost equal length.
  std::optional<double> axis_min;
};
std::string svg_bar_chart(const BarChart& chart);

// Points joined by lines (or points alone), one series per legend entry.
struct Series {
  std::string name;
  std::vector<double> x, y;
  size_t colour = 0;
  bool joined = true;  // draw the polyline through the points
  bool in_legend = true;  // several series may share one legend entry (e.g. the seeds of a variant)
};
struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false;
  std::optional<double> y_min, y_max;  // nullopt: from the data
  int width = 560, height = 320;
};
std::string svg_line_chart(const LineChart& chart);

// A number for labels and tooltips: at most `digits` significant digits, no trailing zeros;
// thousands as "5k" when `compact`.
std::string chart_number(double v, int digits = 4, bool compact = false);

}  // namespace vitlab
