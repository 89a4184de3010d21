// Small-sample statistics for comparing sweep variants: mean, sample standard deviation and
// Welch's unequal-variance t-test. The Student-t tail comes from the regularized incomplete beta
// function (continued fraction, modified Lentz), so no statistics library is needed.
#pragma once
#include <optional>
#include <vector>

namespace vitlab::stats {

double mean(const std::vector<double>& x);  // 0 for an empty list
// Sample standard deviation (divides by n - 1); nullopt when n < 2.
std::optional<double> sample_std(const std::vector<double>& x);

// ln Γ(x) for x > 0.
double log_gamma(double x);
// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1].
double incomplete_beta(double a, double b, double x);
// P(|T| >= |t|) for Student's t with `df` (> 0, need not be an integer) degrees of freedom.
double student_t_two_sided_p(double t, double df);

struct WelchResult {
  double t = 0;
  double df = 0;
  double p = 1;  // two-sided
};
// Welch's t-test of mean(a) - mean(b). nullopt when either side has fewer than 2 values or both
// have zero spread (t is undefined there; the summary says so instead of printing a p-value).
std::optional<WelchResult> welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace vitlab::stats
