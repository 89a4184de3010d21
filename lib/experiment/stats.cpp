#include "experiment/stats.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace vitlab::stats {

double mean(const std::vector<double>& x) {
  if (x.empty()) return 0.0;
  double s = 0;
  for (double v : x) s += v;
  return s / double(x.size());
}

std::optional<double> sample_std(const std::vector<double>& x) {
  if (x.size() < 2) return std::nullopt;
  const double m = mean(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / double(x.size() - 1));
}

double log_gamma(double x) { return std::lgamma(x); }

namespace {
// Continued fraction for I_x(a, b) (Numerical Recipes' betacf), evaluated with the modified
// Lentz method. Converges quickly for x < (a + 1) / (a + b + 2); the caller uses the symmetry
// I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 300;
  constexpr double kEps = 1e-15;
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    // Even step.
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    // Odd step.
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEps) break;
  }
  return h;
}
}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0 && x <= 1))
    throw std::invalid_argument("incomplete_beta: needs a, b > 0 and x in [0, 1]");
  if (x == 0.0 || x == 1.0) return x;
  // Prefactor x^a (1-x)^b / (a B(a, b)), in logs to avoid overflow.
  const double log_front = log_gamma(a + b) - log_gamma(a) - log_gamma(b) + a * std::log(x) +
                           b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double student_t_two_sided_p(double t, double df) {
  if (!(df > 0)) throw std::invalid_argument("student_t_two_sided_p: needs df > 0");
  if (std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return 0.0;
  // P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  return incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
}

std::optional<WelchResult> welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2) return std::nullopt;
  const double va = *sample_std(a) * *sample_std(a) / double(a.size());
  const double vb = *sample_std(b) * *sample_std(b) / double(b.size());
  const double se2 = va + vb;
  if (!(se2 > 0)) return std::nullopt;
  WelchResult r;
  r.t = (mean(a) - mean(b)) / std::sqrt(se2);
  // Welch-Satterthwaite degrees of freedom.
  r.df = se2 * se2 / (va * va / double(a.size() - 1) + vb * vb / double(b.size() - 1));
  r.p = student_t_two_sided_p(r.t, r.df);
  return r;
}

}  // namespace vitlab::stats
