// The checks hmc_start (hmc_bindings.cpp) and nuts_start (nuts_bindings.cpp) share: a run's
// initial points, its counts and step-size settings, and its chains' starts. Each failure is a
// ValueError naming the argument (validate.hpp).
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "hmc/start.hpp"
#include "validate.hpp"

namespace pyvi {

/// `initial` of shape (num_chains, dim), num_chains >= 1, finite; returns num_chains.
inline int64_t require_initial(const DoubleArray& initial, int64_t dim) {
  require_ndim(initial, 2, "initial");
  if (initial.shape(1) != dim) fail("initial must have shape (num_chains, " + std::to_string(dim) + ")");
  const int64_t num_chains = initial.shape(0);
  require_at_least(num_chains, 1, "num_chains");
  require_finite(initial, "initial");
  return num_chains;
}

/// The settings every run has: the counts (num_warmup + num_samples an int64, the drivers' loop
/// bound), the (initial) step size, dual averaging's target, the divergence threshold, and where a
/// distributed process's share of the chains starts.
inline void require_run_settings(int64_t num_samples, int64_t num_warmup, double step_size, double target_accept,
                                 double max_energy_error, int64_t first_chain) {
  require_at_least(num_samples, 0, "num_samples");
  require_at_least(num_warmup, 0, "num_warmup");
  if (num_warmup > std::numeric_limits<int64_t>::max() - num_samples)
    fail("num_warmup + num_samples must be < 2**63, got " + std::to_string(num_warmup) + " + " +
         std::to_string(num_samples));
  require_positive(step_size, "step_size");
  if (!(target_accept > 0.0 && target_accept < 1.0))
    fail("target_accept must lie in (0, 1), got " + std::to_string(target_accept));
  require_positive(max_energy_error, "max_energy_error");
  require_at_least(first_chain, 0, "first_chain");
}

/// Static HMC's path length L: recorded per draw as an int32.
inline void require_num_steps(int64_t num_steps) {
  require_at_least(num_steps, 1, "num_steps");
  if (num_steps > std::numeric_limits<int32_t>::max()) fail("num_steps must be < 2**31");
}

/// Refuses a start where log p or its gradient is not finite, naming the chain of the whole run
/// (a process's share starts at chain first_chain).
inline void require_finite_starts(const hmc::StartFaults& faults, int64_t first_chain) {
  if (faults.log_prob >= 0)
    fail("initial: the log density is not finite at chain " + std::to_string(first_chain + faults.log_prob) +
         "'s start");
  if (faults.grad >= 0)
    fail("initial: the gradient of the log density is not finite at chain " +
         std::to_string(first_chain + faults.grad) + "'s start");
}

}  // namespace pyvi
