#include "report/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "report/html.h"

namespace vitlab {

std::string chart_colour(size_t i) {
  static const char* tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return tab10[i % 10];
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + (lo == 0 ? 1.0 : std::abs(lo) * 0.1);
  const double raw = (hi - lo) / std::max(count, 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) {
      step = m * power;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double t = first; t < hi + step * (1 - 1e-9); t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  if (ticks.size() < 2) ticks.push_back(first + step);
  return ticks;
}

std::string chart_number(double v, int digits, bool compact) {
  if (!std::isfinite(v)) return "n/a";
  if (compact && std::abs(v) >= 1000) return fmt::format("{:.{}g}k", v / 1000.0, digits);
  return fmt::format("{:.{}g}", v, digits);
}

namespace {

// Maps data values to pixels along one axis.
struct Scale {
  double lo, hi, from, to;
  bool log = false;
  double operator()(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return from + t * (to - from);
  }
};

std::string svg_open(int width, int height, const std::string& title) {
  return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{}\" "
                     "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"11\">\n"
                     "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                     width, height, width, height, width / 2, escape_html(title));
}

// Ticks along x for a log axis: 1, 2 and 5 times the powers of ten inside [lo, hi].
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e)
    for (const double m : {1.0, 2.0, 5.0}) {
      const double t = m * std::pow(10.0, e);
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
    }
  return ticks;
}

// The frame, grid lines and tick labels of a plot area [x0, x1] x [y0, y1] (y0 at the top).
std::string axes(const Scale& x, const std::vector<double>& xt, const Scale& y, const std::vector<double>& yt,
                 const std::string& x_label, const std::string& y_label, bool compact_x) {
  const double x0 = x.from, x1 = x.to, y0 = y.to, y1 = y.from;
  std::string out;
  for (const double t : xt)
    out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e5e5e5\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
                       x(t), y0, y1, y1 + 14, chart_number(t, 4, compact_x));
  for (const double t : yt)
    out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#e5e5e5\"/>"
                       "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
                       x0, x1, y(t), x0 - 4, y(t) + 4, chart_number(t));
  out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#555\"/>\n",
                     x0, y0, x1 - x0, y1 - y0);
  out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", (x0 + x1) / 2, y1 + 30,
                     escape_html(x_label));
  if (!y_label.empty())
    out += fmt::format("<text transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                       (y0 + y1) / 2, escape_html(y_label));
  return out;
}

// Whether every x is a whole number (epochs, layers).
bool integer_x(const LineChart& c) {
  for (const auto& s : c.series)
    for (const double x : s.x)
      if (std::isfinite(x) && x != std::round(x)) return false;
  return true;
}

}  // namespace

std::string svg_bar_chart(const BarChart& c) {
  const size_t n = c.values.size();
  auto error = [&](size_t i) { return i < c.errors.size() && c.errors[i] ? *c.errors[i] : 0.0; };
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  size_t longest = 4;
  for (size_t i = 0; i < n; ++i) {
    lo = std::min(lo, c.values[i] - error(i));
    hi = std::max(hi, c.values[i] + error(i));
    longest = std::max(longest, c.labels[i].size());
  }
  if (c.reference) lo = std::min(lo, *c.reference), hi = std::max(hi, *c.reference);
  if (n == 0) lo = 0, hi = 1;
  const double span = std::max(hi - lo, 1e-9);
  const std::vector<double> ticks = nice_ticks(c.axis_min ? *c.axis_min : lo - 0.25 * span, hi + 0.12 * span);
  const double label_width = std::clamp(6.5 * double(longest), 60.0, 300.0);
  const int row = 22, width = int(label_width) + 420, height = 40 + row * int(n) + 48;
  const Scale x{ticks.front(), ticks.back(), label_width + 12, double(width) - 16};
  const Scale y{0, 1, double(height - 48), 28};  // only for the frame
  std::string out = svg_open(width, height, c.title);
  out += axes(x, ticks, y, {}, c.value_label, "", false);
  for (size_t i = 0; i < n; ++i) {
    const double top = 34 + row * double(i), mid = top + 7, v = c.values[i], e = error(i);
    const std::string colour = chart_colour(i < c.colour_index.size() ? c.colour_index[i] : 0);
    const std::string value_text = fmt::format("{:.2f}", v) + (e > 0 ? fmt::format(" ± {:.2f}", e) : "");
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", label_width + 6, mid + 4,
                       escape_html(c.labels[i]));
    out += fmt::format("<rect class=\"mark\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"14\" fill=\"{}\">"
                       "<title>{}: {}</title></rect>\n",
                       x.from, top, std::max(0.0, x(std::max(v, x.lo)) - x.from), colour,
                       escape_html(c.labels[i]), escape_html(value_text));
    if (e > 0)
      out += fmt::format("<path d=\"M{0:.1f} {2:.1f}H{1:.1f}M{0:.1f} {3:.1f}V{4:.1f}M{1:.1f} {3:.1f}V{4:.1f}\" "
                         "stroke=\"#222\" fill=\"none\"/>\n",
                         x(std::max(v - e, x.lo)), x(v + e), mid, mid - 4, mid + 4);
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#333\">{}</text>\n", x(v + e) + 5, mid + 4,
                       escape_html(value_text));
  }
  if (c.reference) {
    out += fmt::format("<line x1=\"{0:.1f}\" y1=\"28\" x2=\"{0:.1f}\" y2=\"{1}\" stroke=\"#000\" "
                       "stroke-dasharray=\"4 3\"/>\n", x(*c.reference), height - 48);
    out += fmt::format("<text x=\"{:.1f}\" y=\"26\" font-size=\"10\">{}</text>\n", x(*c.reference) + 3,
                       escape_html(c.reference_label));
  }
  return out + "</svg>\n";
}

std::string svg_line_chart(const LineChart& c) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  std::vector<const Series*> legend;
  for (const auto& s : c.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (c.log_x && s.x[i] <= 0)) continue;
      x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
    }
    if (s.in_legend) legend.push_back(&s);
  }
  if (!std::isfinite(x_lo)) x_lo = 1, x_hi = 10, y_lo = 0, y_hi = 1;
  if (c.y_min) y_lo = *c.y_min;
  if (c.y_max) y_hi = *c.y_max;
  const double y_pad = 0.05 * std::max(y_hi - y_lo, 1e-9);  // only on the sides the caller left open
  const std::vector<double> yt = nice_ticks(y_lo - (c.y_min ? 0 : y_pad), y_hi + (c.y_max ? 0 : y_pad));
  std::vector<double> xt;
  if (c.log_x) {
    x_lo /= 1.3, x_hi *= 1.3;
    xt = log_ticks(x_lo, x_hi);
  } else if (integer_x(c)) {  // epochs, layers: no tick between two of them
    const std::vector<double> nice = nice_ticks(x_lo, x_hi, 6);
    const double step = std::max(1.0, nice[1] - nice[0]);
    // Multiples of the step (5, 10, 15 epochs), or every value when the step is 1.
    for (double t = std::ceil(x_lo / step) * step; t <= x_hi + 1e-9; t += step) xt.push_back(t);
    if (xt.empty()) xt.push_back(x_lo);
    x_lo -= 0.3, x_hi += 0.3;
  } else {
    xt = nice_ticks(x_lo, x_hi, 6);
    x_lo = xt.front(), x_hi = xt.back();
  }
  // Legend columns as wide as the longest name (about 6.5 pixels a character at 11 px).
  size_t longest = 4;
  for (const auto* s : legend) longest = std::max(longest, s->name.size());
  const double column = std::clamp(6.5 * double(longest) + 24, 110.0, double(c.width - 60));
  const int columns = std::max(1, int((c.width - 58) / column));
  const int legend_rows = int((legend.size() + columns - 1) / columns);
  const int plot_bottom = c.height - 44, height = c.height + 18 * legend_rows;
  const Scale x{x_lo, x_hi, 58, double(c.width) - 14, c.log_x};
  const Scale y{yt.front(), yt.back(), double(plot_bottom), 26};
  std::string out = svg_open(c.width, height, c.title);
  out += axes(x, xt, y, yt, c.x_label, c.y_label, c.log_x);
  for (const auto& s : c.series) {
    const std::string colour = chart_colour(s.colour);
    std::string points, marks;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (c.log_x && s.x[i] <= 0)) continue;
      points += fmt::format("{:.1f},{:.1f} ", x(s.x[i]), y(s.y[i]));
      marks += fmt::format("<circle class=\"mark\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\">"
                           "<title>{}: {}, {}</title></circle>\n",
                           x(s.x[i]), y(s.y[i]), colour, escape_html(s.name), chart_number(s.x[i], 6),
                           chart_number(s.y[i]));
    }
    if (s.joined && !points.empty())
      out += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
                         "stroke-opacity=\"0.8\"/>\n", points, colour);
    out += marks;
  }
  for (size_t i = 0; i < legend.size(); ++i) {
    const double lx = 58 + column * double(i % columns), ly = c.height + 18.0 * double(i / columns);
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"10\" fill=\"{}\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
                       lx, ly - 9, chart_colour(legend[i]->colour), lx + 16, ly, escape_html(legend[i]->name));
  }
  return out + "</svg>\n";
}

}  // namespace vitlab
