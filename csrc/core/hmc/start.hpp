// A chain's start, the same for the HMC and the NUTS driver: its position copied from the run's
// initial points, log p and its gradient evaluated there, and the first chains where either is not
// finite (the bindings refuse such a start, naming the chain: sampler_checks.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "state.hpp"
#include "transition.hpp"

namespace pyvi::hmc {

/// The first chains (of a process's share, counted from 0) whose start has a non-finite log p, or
/// a finite one with a non-finite gradient (a user's target may return that); -1: none.
struct StartFaults {
  int64_t log_prob = -1, grad = -1;
};

/// Chain c's state at row c of `initial` (num_chains x dim), log p and its gradient evaluated
/// there; a non-finite one is noted in `faults` (chains started in order: the first is kept).
template <class Target>
void start_chain(const Target& target, const double* initial, int64_t c, State& state, StartFaults& faults) {
  const int64_t d = target.dim();
  std::copy(initial + c * d, initial + (c + 1) * d, state.x.begin());
  state.log_prob = target.log_prob_and_grad(state.x.data(), state.grad.data());
  if (faults.log_prob < 0 && !std::isfinite(state.log_prob)) faults.log_prob = c;
  if (faults.grad < 0 && !all_finite(state.grad.data(), d)) faults.grad = c;
}

}  // namespace pyvi::hmc
