// The banana log joint density and its gradient, from sufficient statistics.
//
// Model (Problem 3 of the problem set):
//   y_i ~ N(theta1 + theta2^2, sigma_y^2), i = 1..n,      theta ~ N(0, sigma_theta^2 I_2).
// With r = theta1 + theta2^2, ybar = mean(y) and ss = sum_i (y_i - ybar)^2,
//   sum_i (y_i - r)^2 = ss + n (r - ybar)^2,
// so the fully normalised log joint is O(1) per evaluation:
//   log p(y, theta) = -n/2 log(2 pi sigma_y^2) - (ss + n (r - ybar)^2) / (2 sigma_y^2)
//                     - log(2 pi sigma_theta^2) - |theta|^2 / (2 sigma_theta^2).
// We keep (n, ybar, ss) rather than (n, sum y, sum y^2): the centred form avoids the cancellation
// in sum y^2 - 2 r sum y + n r^2 when |r| is large. The two are the same sufficient statistic.
//
// Range. sigma_y and sigma_theta lie in [kBananaSigmaMin, kBananaSigmaMax] (checked where the
// parameters are built: pyvi.targets.Banana, pyvi._core, the torch op): there 1/sigma^2 and the
// ratios of the exact quadrature are normal doubles, so log p is never NaN at a finite theta (it
// underflows to -inf far out). Where a term of the gradient overflows, the plain formula can meet
// inf - inf or 0 * inf (theta = (1e308, 0): dlik_dr = -inf times theta2 = 0); banana_repair_gradient
// then recomputes it on scaled coordinates (banana_gradient_scaled), which gives the exact value
// rounded: +-inf where it overflows, 0 where it is 0.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "macros.h"

namespace pyvi {

/// The sigmas (sigma_y, sigma_theta) the banana accepts.
constexpr double kBananaSigmaMin = 1e-50;
constexpr double kBananaSigmaMax = 1e50;

/// Everything the banana density needs, precomputed once from the data (see banana_constants()).
template <typename scalar_t>
struct BananaParams {
  scalar_t num_data;        // n
  scalar_t mean_y;          // ybar
  scalar_t lik_precision;   // 1 / sigma_y^2
  scalar_t prior_precision; // 1 / sigma_theta^2
  scalar_t log_norm;        // -n/2 log(2 pi sigma_y^2) - ss/(2 sigma_y^2) - log(2 pi sigma_theta^2)
};

/// Why (n, ybar, ss, sigma_y, sigma_theta) make no banana, or "" when they make one: the checks of
/// every place that builds BananaParams (pyvi._core, the torch op; pyvi.targets.Banana makes the
/// same in Python), each message naming the argument.
inline std::string banana_params_error(double num_data, double mean_y, double ss_y, double sigma_y,
                                       double sigma_theta) {
  if (!(num_data >= 1.0) || !std::isfinite(num_data))
    return "num_data must be a finite number >= 1, got " + std::to_string(num_data);
  if (!std::isfinite(mean_y)) return "mean_y must be finite, got " + std::to_string(mean_y);
  if (!(ss_y >= 0.0) || !std::isfinite(ss_y)) return "ss_y must be a finite number >= 0, got " + std::to_string(ss_y);
  const double sigmas[2] = {sigma_y, sigma_theta};
  const char* names[2] = {"sigma_y", "sigma_theta"};
  for (int i = 0; i < 2; ++i) {
    if (!(sigmas[i] >= kBananaSigmaMin && sigmas[i] <= kBananaSigmaMax)) {
      char value[32];
      std::snprintf(value, sizeof value, "%.17g", sigmas[i]);
      return std::string(names[i]) + " must lie in [1e-50, 1e50] (beyond, 1/" + names[i] +
             "^2 and the exact quadrature leave float64's range), got " + value;
    }
  }
  if (!std::isfinite(ss_y / (sigma_y * sigma_y)))
    return "ss_y / sigma_y^2 overflows: the data's spread is too large for sigma_y";
  return "";
}

/// Builds the parameters from the sufficient statistics; done on the host in double precision.
inline BananaParams<double> banana_params(double num_data, double mean_y, double ss_y,
                                          double sigma_y, double sigma_theta) {
  constexpr double kLog2Pi = 1.8378770664093454835606594728112;
  const double lik_precision = 1.0 / (sigma_y * sigma_y);
  const double prior_precision = 1.0 / (sigma_theta * sigma_theta);
  const double log_norm = -0.5 * num_data * (kLog2Pi + 2.0 * std::log(sigma_y)) -
                          0.5 * ss_y * lik_precision - (kLog2Pi + 2.0 * std::log(sigma_theta));
  return {num_data, mean_y, lik_precision, prior_precision, log_norm};
}

template <typename scalar_t, typename other_t>
PYVI_HOST_DEVICE BananaParams<scalar_t> banana_cast(const BananaParams<other_t>& p) {
  return {static_cast<scalar_t>(p.num_data), static_cast<scalar_t>(p.mean_y),
          static_cast<scalar_t>(p.lik_precision), static_cast<scalar_t>(p.prior_precision),
          static_cast<scalar_t>(p.log_norm)};
}

/// The gradient at theta = (t1, t2) where the plain formula overflowed into NaN: with u = t2 / 2^j
/// and everything else divided by 2^2j (exact powers of two, j half the exponent range, so that
/// u^2 cannot overflow), grad[0] / 2^2j = -n lik r' - prior t1' and grad[1] / 2^3j =
/// u (-2 n lik r' - prior / 2^2j), r' = t1' + u^2 - ybar'; scaled back, each rounds to its
/// exact value or to +-inf. Only for the far-out points where the plain formula fails.
template <typename scalar_t>
struct BananaScaling;  // 2^-j and 2^j, j half the exponent range
template <>
struct BananaScaling<double> {
  static PYVI_HOST_DEVICE double down() { return 0x1p-512; }
  static PYVI_HOST_DEVICE double up() { return 0x1p512; }
};
template <>
struct BananaScaling<float> {
  static PYVI_HOST_DEVICE float down() { return 0x1p-64f; }
  static PYVI_HOST_DEVICE float up() { return 0x1p64f; }
};

template <typename scalar_t>
struct BananaGradient {
  scalar_t d1, d2;  // d log p / d theta1, d theta2
};

template <typename scalar_t>
PYVI_HOST_DEVICE BananaGradient<scalar_t> banana_gradient_scaled(const BananaParams<scalar_t>& p, scalar_t t1,
                                                                 scalar_t t2) {
  const scalar_t down = BananaScaling<scalar_t>::down(), up = BananaScaling<scalar_t>::up();
  const scalar_t u = t2 * down;
  const scalar_t t1_scaled = t1 * down * down;
  const scalar_t residual = t1_scaled + u * u - p.mean_y * down * down;
  const scalar_t n_lik = p.num_data * p.lik_precision;
  return {(-n_lik * residual - p.prior_precision * t1_scaled) * up * up,
          u * (scalar_t(-2) * n_lik * residual - p.prior_precision * down * down) * up * up * up};
}

/// log p(y, theta) and its gradient (grad[0], grad[1]) at theta = (t1, t2).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t banana_log_joint(const BananaParams<scalar_t>& p, scalar_t t1,
                                           scalar_t t2, scalar_t* grad) {
  const scalar_t residual = t1 + t2 * t2 - p.mean_y;  // r - ybar
  // d/dr of the log likelihood: -n (r - ybar) / sigma_y^2.
  const scalar_t dlik_dr = -p.num_data * p.lik_precision * residual;
  grad[0] = dlik_dr - p.prior_precision * t1;
  grad[1] = scalar_t(2) * t2 * dlik_dr - p.prior_precision * t2;
  return p.log_norm + scalar_t(0.5) * dlik_dr * residual -
         scalar_t(0.5) * p.prior_precision * (t1 * t1 + t2 * t2);
}

/// Replaces a gradient that banana_log_joint left NaN (a term overflowed: |theta| astronomically
/// large) by banana_gradient_scaled's. For the evaluations that hand the gradient to a user; the
/// samplers skip it (a test per evaluation costs their interleaved leapfrog up to 2x, and a NaN
/// gradient ends a trajectory as an infinite one does: a divergent, rejected transition).
template <typename scalar_t>
PYVI_HOST_DEVICE void banana_repair_gradient(const BananaParams<scalar_t>& p, scalar_t t1, scalar_t t2,
                                             scalar_t* grad) {
  if (grad[0] != grad[0] || grad[1] != grad[1]) {
    const BananaGradient<scalar_t> scaled = banana_gradient_scaled(p, t1, t2);
    grad[0] = scaled.d1;
    grad[1] = scaled.d2;
  }
}

}  // namespace pyvi
