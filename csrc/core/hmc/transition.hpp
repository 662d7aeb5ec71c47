// One static-HMC transition (fixed or uniformly random path length) of W chains: the kernel
// (random stream, state) -> (state, info), written once and run on groups of any width W.
//
// Per chain: draw the path length and the momentum, integrate (all chains of the group together,
// see leapfrog.hpp), then accept or reject by the energy error. The random numbers are drawn in a
// fixed order (path length, momentum, accept uniform): pyvi/_numba/hmc/transition.py follows it,
// so both backends give the same draws. A new trajectory rule (NUTS) is another kernel beside this
// one, on the same state, info, metric and leapfrog.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
//   Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434
//   (divergences).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../../common/rng.h"
#include "leapfrog.hpp"
#include "state.hpp"

namespace pyvi::hmc {

/// A transition whose energy error exceeds this is divergent (Stan's value); exported to Python.
constexpr double kMaxEnergyError = 1000.0;

/// One chain of a group: its state, its random stream, its step size and the transition's scratch
/// (the trajectory's end point and momentum). Aligned to a cache line, as its buffers are (see
/// CacheLineAllocator): chains of different groups never share one.
struct alignas(kCacheLine) Chain {
  State state;
  State proposal;
  Buffer momentum;
  Xoshiro256pp rng;
  double step_size;

  Chain(int64_t dim, uint64_t seed, uint64_t stream, double step)
      : state(dim), proposal(dim), momentum(dim), rng(seed, stream), step_size(step) {}
};

/// Whether x[0 .. d) are all finite.
inline bool all_finite(const double* x, int64_t d) {
  for (int64_t i = 0; i < d; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

/// Moves chains[0 .. count) one transition on and writes what each transition did into infos.
template <int W, class Target, class Metric>
void transition(const Target& target, const Metric& metric, const KernelSettings& kernel,
                Chain* const* chains, int count, Info* infos) {
  const int64_t d = target.dim();
  Lanes<W> lanes;
  lanes.count = count;
  double energy[W] = {};
  for (int w = 0; w < count; ++w) {
    Chain& c = *chains[w];
    const int64_t length =
        kernel.random_steps
            ? 1 + static_cast<int64_t>(c.rng.uniform() * static_cast<double>(kernel.num_steps))
            : kernel.num_steps;
    metric.sample_momentum(c.rng, c.momentum.data(), d);
    energy[w] = -c.state.log_prob + metric.kinetic_energy(c.momentum.data(), d);
    for (int64_t i = 0; i < d; ++i) {  // (d is a constant for a fixed-dimension target)
      c.proposal.x[i] = c.state.x[i];
      c.proposal.grad[i] = c.state.grad[i];
    }
    lanes.x[w] = c.proposal.x.data();
    lanes.p[w] = c.momentum.data();
    lanes.grad[w] = c.proposal.grad.data();
    lanes.step_size[w] = c.step_size;
    lanes.num_steps[w] = length;
  }
  leapfrog<W>(target, metric, lanes);
  for (int w = 0; w < count; ++w) {
    Chain& c = *chains[w];
    c.proposal.log_prob = lanes.log_prob[w];
    double energy_error = (-c.proposal.log_prob + metric.kinetic_energy(c.momentum.data(), d)) - energy[w];
    // A non-finite energy error is the extreme of divergence: reject, never propagate. It is NaN or
    // +inf after an overflow or a non-finite gradient anywhere on the path (the momentum keeps it),
    // -inf when a (user's) target returned log p = +inf at the end; and a position that overflowed
    // is refused even where a target returned a finite value for it. So draws are always finite.
    if (!std::isfinite(energy_error) || !all_finite(c.proposal.x.data(), d))
      energy_error = std::numeric_limits<double>::infinity();
    const double accept_prob = energy_error <= 0.0 ? 1.0 : std::exp(-energy_error);
    if (c.rng.uniform() < accept_prob) swap(c.state, c.proposal);
    infos[w] = {accept_prob, energy_error, energy_error > kernel.max_energy_error, lanes.num_steps[w]};
  }
}

}  // namespace pyvi::hmc
