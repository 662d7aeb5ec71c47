// Nesterov dual averaging of log(step size) towards a target acceptance rate, as in Stan.
//
// The constants are defined here only: pyvi._core exports them (hmc_constants) and the Numba and
// numpy samplers read them from there.
//
// References:
//   Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Algorithm 5, arXiv:1111.4246.
//   Stan Reference Manual, "HMC algorithm parameters" (gamma 0.05, kappa 0.75, t0 10).
#pragma once

#include <algorithm>
#include <cmath>

namespace pyvi::hmc {

/// Aligned to a cache line: the adaptations of chains in different groups, which different threads
/// update, never share one.
struct alignas(64) DualAveraging {
  static constexpr double kGamma = 0.05;
  static constexpr double kKappa = 0.75;
  static constexpr double kT0 = 10.0;
  // exp(+-700) stays finite; outside that a step size is meaningless anyway.
  static constexpr double kMaxLogStep = 700.0;

  double mu;                  // shrinkage point, log(10 * initial step size)
  double target_accept;       // delta
  double log_step = 0.0;      // the iterate used for the next transition
  double log_step_bar = 0.0;  // its weighted average: the step size after warm-up
  double h_bar = 0.0;         // running mean of (delta - accept)
  double count = 0.0;         // t

  DualAveraging(double initial_step, double target)
      : mu(std::log(10.0 * initial_step)), target_accept(target), log_step(std::log(initial_step)) {}

  /// Feeds the acceptance statistic of one warm-up transition; returns the next step size.
  double update(double accept_prob) {
    count += 1.0;
    const double eta = 1.0 / (count + kT0);
    h_bar = (1.0 - eta) * h_bar + eta * (target_accept - accept_prob);
    log_step = std::clamp(mu - std::sqrt(count) / kGamma * h_bar, -kMaxLogStep, kMaxLogStep);
    const double weight = std::pow(count, -kKappa);
    log_step_bar = weight * log_step + (1.0 - weight) * log_step_bar;
    return std::exp(log_step);
  }

  /// The step size to sample with once warm-up is over.
  double final_step() const { return count > 0.0 ? std::exp(log_step_bar) : std::exp(log_step); }
};

}  // namespace pyvi::hmc
