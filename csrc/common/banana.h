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
#pragma once

#include <cmath>

#include "macros.h"

namespace pyvi {

/// Everything the banana density needs, precomputed once from the data (see banana_constants()).
template <typename scalar_t>
struct BananaParams {
  scalar_t num_data;        // n
  scalar_t mean_y;          // ybar
  scalar_t lik_precision;   // 1 / sigma_y^2
  scalar_t prior_precision; // 1 / sigma_theta^2
  scalar_t log_norm;        // -n/2 log(2 pi sigma_y^2) - ss/(2 sigma_y^2) - log(2 pi sigma_theta^2)
};

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

}  // namespace pyvi
