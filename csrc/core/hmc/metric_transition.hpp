// One static-HMC transition of one chain with its own metric (diagonal or dense, adapted in
// Stan's windows): the kernel the per-chain driver (nuts_driver.hpp) runs for kernel="hmc" with a
// metric other than the identity. Random numbers in the order of transition.hpp (path length,
// momentum, accept uniform); the leapfrog is NUTS's step repeated. Static HMC with the identity
// metric keeps the grouped lanes of transition.hpp. pyvi/_numba/hmc/nuts.py's static_transition is
// the Numba twin.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../../common/rng.h"
#include "nuts.hpp"
#include "state.hpp"

namespace pyvi::hmc {

/// Moves `state` one transition on; the scratch is the workspace's forward end. tree_depth is 0.
template <class Target, class Metric>
NutsInfo static_transition(const Target& target, const Metric& metric, NutsWorkspace& ws, Xoshiro256pp& rng,
                           State& state, double step_size, int64_t num_steps, bool random_steps,
                           double max_energy_error) {
  const int64_t d = ws.d;
  const int64_t length =
      random_steps ? 1 + static_cast<int64_t>(rng.uniform() * static_cast<double>(num_steps)) : num_steps;
  double* x = ws.x_end[1].data();
  double* p = ws.p_end[1].data();
  double* g = ws.g_end[1].data();
  metric.sample_momentum(rng, p, d);
  const double h0 = -state.log_prob + metric.kinetic_energy(p, d);
  nuts_detail::copy(state.x.data(), x, d);
  nuts_detail::copy(state.grad.data(), g, d);
  double log_prob = state.log_prob;
  for (int64_t step = 0; step < length; ++step) log_prob = nuts_detail::leapfrog_step(target, metric, x, p, g, step_size, d);
  double h = -log_prob + metric.kinetic_energy(p, d);
  // Overflow to inf, NaN, or log p = +inf (a user's target may return it) is the extreme of
  // divergence: reject, never propagate.
  if (!std::isfinite(h)) h = std::numeric_limits<double>::infinity();
  const double energy_error = h - h0;
  NutsInfo info;
  info.accept_prob = energy_error <= 0.0 ? 1.0 : std::exp(-energy_error);
  info.energy = h0;
  if (rng.uniform() < info.accept_prob) {
    nuts_detail::copy(x, state.x.data(), d);
    nuts_detail::copy(g, state.grad.data(), d);
    state.log_prob = log_prob;
    info.energy = h;
  }
  info.energy_error = energy_error;
  info.divergent = energy_error > max_energy_error;
  info.num_steps = length;
  return info;
}

}  // namespace pyvi::hmc
