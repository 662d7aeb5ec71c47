// Stan's windowed warm-up: when to estimate the metric, and the estimate.
//
// Warm-up iterations 0 .. num_warmup - 1 are split into an initial fast interval (init_buffer,
// 75), slow windows that double from base_window (25), the last one stretched to the start of the
// terminal fast interval (term_buffer, 50). The chain's draws within a slow window feed a Welford
// estimator of their variances (diagonal metric) or covariance (dense); at the window's end the
// estimate, regularised toward the identity as Stan does, becomes the inverse metric
// M^-1 = (n / (n + 5)) Sigma + 1e-3 (5 / (n + 5)) I, and the driver restarts the step size search.
// A warm-up shorter than init_buffer + base_window + term_buffer takes Stan's fallback (15% / 75% /
// 10%); one shorter than 20 iterations estimates no metric. pyvi/_numba/hmc/windowed_adaptation.py
// is the Numba twin.
//
// References:
//   Stan Reference Manual, "HMC algorithm parameters: automatic parameter tuning"; Stan,
//   src/stan/mcmc/windowed_adaptation.hpp, welford_var_estimator.hpp, welford_covar_estimator.hpp.
//   Welford, "Note on a method for calculating corrected sums of squares and products",
//   Technometrics 4 (1962).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace pyvi::hmc {

/// The warm-up's schedule (Stan's windowed_adaptation, its counters included).
struct WindowSchedule {
  int64_t num_warmup = 0;
  int64_t init_buffer = 0, term_buffer = 0, base_window = 0;
  int64_t counter = 0, window_size = 0, next_window = 0;

  /// The schedule for num_warmup iterations (fallbacks above); `enabled` false: no windows.
  WindowSchedule(int64_t warmup, int64_t init, int64_t term, int64_t base, bool enabled) {
    if (!enabled || warmup < 20) return;  // num_warmup 0: no window ever opens
    num_warmup = warmup;
    if (init + base + term > warmup) {
      init = static_cast<int64_t>(0.15 * static_cast<double>(warmup));
      term = static_cast<int64_t>(0.1 * static_cast<double>(warmup));
      base = warmup - (init + term);
    }
    init_buffer = init;
    term_buffer = term;
    base_window = base;
    window_size = base;
    next_window = init + base - 1;
  }

  /// Whether the current iteration's draw feeds the estimator.
  bool in_window() const {
    return counter >= init_buffer && counter < num_warmup - term_buffer && counter != num_warmup;
  }

  /// Whether the current iteration closes a slow window.
  bool end_of_window() const { return counter == next_window && counter != num_warmup; }

  void compute_next_window() {
    if (next_window == num_warmup - term_buffer - 1) return;
    window_size *= 2;
    next_window = counter + window_size;
    if (next_window != num_warmup - term_buffer - 1) {
      if (next_window + 2 * window_size >= num_warmup - term_buffer) next_window = num_warmup - term_buffer - 1;
    }
  }
};

/// Welford's running mean and (co)variance of a slow window's draws; `dense` keeps the d x d
/// matrix, else the d variances.
struct MetricEstimator {
  int64_t d;
  bool dense;
  double n = 0.0;
  std::vector<double> mean, m2, delta;

  MetricEstimator(int64_t dim, bool is_dense)
      : d(dim), dense(is_dense), mean(dim), m2(is_dense ? dim * dim : dim), delta(dim) {}

  void restart() {
    n = 0.0;
    for (auto& v : mean) v = 0.0;
    for (auto& v : m2) v = 0.0;
  }

  void add(const double* x) {
    n += 1.0;
    for (int64_t i = 0; i < d; ++i) {
      delta[i] = x[i] - mean[i];
      mean[i] += delta[i] / n;
    }
    if (dense) {
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j) m2[i * d + j] += (x[i] - mean[i]) * delta[j];
    } else {
      for (int64_t i = 0; i < d; ++i) m2[i] += (x[i] - mean[i]) * delta[i];
    }
  }

  /// Writes the regularised estimate into inv_mass (and its Cholesky factor into chol when dense;
  /// the lower triangle is used, mirrored to keep M^-1 exactly symmetric). Returns false, leaving
  /// both unchanged, when the dense estimate is not positive definite (NaN draws).
  bool finish(double* inv_mass, double* chol) const {
    const double shrink = n / (n + 5.0), ridge = 1e-3 * (5.0 / (n + 5.0));
    if (!dense) {
      for (int64_t i = 0; i < d; ++i) inv_mass[i] = shrink * (m2[i] / (n - 1.0)) + ridge;
      return true;
    }
    std::vector<double> a(d * d), l(d * d, 0.0);
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        a[i * d + j] = shrink * (m2[i * d + j] / (n - 1.0)) + (i == j ? ridge : 0.0);
        a[j * d + i] = a[i * d + j];
      }
    for (int64_t j = 0; j < d; ++j) {  // Cholesky-Crout, column by column
      for (int64_t i = j; i < d; ++i) {
        double s = a[i * d + j];
        for (int64_t k = 0; k < j; ++k) s -= l[i * d + k] * l[j * d + k];
        if (i == j) {
          if (!(s > 0.0)) return false;
          l[j * d + j] = std::sqrt(s);
        } else {
          l[i * d + j] = s / l[j * d + j];
        }
      }
    }
    for (int64_t i = 0; i < d * d; ++i) {
      inv_mass[i] = a[i];
      chol[i] = l[i];
    }
    return true;
  }
};

}  // namespace pyvi::hmc
