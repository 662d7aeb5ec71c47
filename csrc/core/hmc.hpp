// Hamiltonian Monte Carlo with a leapfrog integrator, fixed or uniformly random path length,
// optional dual-averaging step-size adaptation during warm-up, one independent chain per call.
//
// pyvi/_numba/hmc.py is the same algorithm, statement for statement, with the same random
// stream; keep the two in step.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
//   Hoffman & Gelman, "The No-U-Turn Sampler" (2014), arXiv:1111.4246 (step-size adaptation).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../common/rng.h"
#include "dual_averaging.hpp"
#include "leapfrog.hpp"

namespace pyvi {

struct HMCSettings {
  int64_t num_samples;
  int64_t num_warmup;
  int64_t num_steps;           // L, or its maximum when random_steps
  double step_size;            // initial step size when adapting
  bool random_steps;           // L ~ Uniform{1, ..., num_steps} each transition
  bool adapt_step_size;        // dual averaging during warm-up
  double target_accept;        // dual averaging's delta
  double max_energy_error;     // a transition whose energy error exceeds this is divergent
  uint64_t seed;
};

/// Where one chain writes its draws (each a slice of the (num_chains, ...) outputs).
struct ChainOutput {
  double* samples;      // (num_samples, dim)
  double* log_prob;     // (num_samples,)
  double* accept_prob;  // (num_samples,)
  bool* divergent;      // (num_samples,)
  int32_t* num_steps;   // (num_samples,) path length used
  double* step_size;    // scalar: the step size used for sampling
};

inline double sum_squares_half(const double* p, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; ++i) s += p[i] * p[i];
  return 0.5 * s;
}

/// Runs chain `chain` of the seed's streams from `initial` (dim values; log p must be finite there).
template <class Target>
void hmc_chain(const Target& target, const double* initial, const HMCSettings& settings,
               uint64_t chain, const ChainOutput& out) {
  const int64_t d = target.dim();
  std::vector<double> x(initial, initial + d), grad(d), x_new(d), grad_new(d), p(d);
  double log_prob = target.log_prob_and_grad(x.data(), grad.data());
  Xoshiro256pp rng(settings.seed, chain);
  DualAveraging adaptation(settings.step_size, settings.target_accept);
  double step_size = settings.step_size;
  const int64_t total = settings.num_warmup + settings.num_samples;

  for (int64_t iter = 0; iter < total; ++iter) {
    // Draw order (path length, momentum, accept uniform) is fixed: the Numba twin follows it.
    const int64_t path_length =
        settings.random_steps
            ? 1 + static_cast<int64_t>(rng.uniform() * static_cast<double>(settings.num_steps))
            : settings.num_steps;
    rng.normals(p.data(), d);
    const double energy = -log_prob + sum_squares_half(p.data(), d);
    x_new = x;
    grad_new = grad;
    const double log_prob_new =
        leapfrog(target, x_new.data(), p.data(), grad_new.data(), step_size, path_length);
    double energy_error = (-log_prob_new + sum_squares_half(p.data(), d)) - energy;
    // Overflow to inf or NaN is the extreme of divergence: reject, never propagate.
    if (!(energy_error == energy_error)) energy_error = std::numeric_limits<double>::infinity();
    const double accept_prob = energy_error <= 0.0 ? 1.0 : std::exp(-energy_error);
    const double u = rng.uniform();
    if (u < accept_prob) {
      std::swap(x, x_new);
      std::swap(grad, grad_new);
      log_prob = log_prob_new;
    }

    if (iter < settings.num_warmup) {
      if (settings.adapt_step_size) {
        step_size = adaptation.update(accept_prob);
        if (iter + 1 == settings.num_warmup) step_size = adaptation.final_step();
      }
      continue;
    }
    const int64_t draw = iter - settings.num_warmup;
    for (int64_t i = 0; i < d; ++i) out.samples[draw * d + i] = x[i];
    out.log_prob[draw] = log_prob;
    out.accept_prob[draw] = accept_prob;
    out.divergent[draw] = energy_error > settings.max_energy_error;
    out.num_steps[draw] = static_cast<int32_t>(path_length);
  }
  *out.step_size = step_size;
}

}  // namespace pyvi
