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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../common/rng.h"
#include "dual_averaging.hpp"
#include "leapfrog.hpp"
#include "parallel.hpp"

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

/// One chain's state between transitions. A transition is begin() (draw the path length and the
/// momentum), the leapfrog integration of (x_new, p, grad_new), then finish() (accept or reject,
/// adapt, record). Splitting it this way lets one thread integrate several chains at once.
template <class Target>
struct ChainState {
  const Target& target;
  const HMCSettings& settings;
  const ChainOutput& out;
  std::vector<double> x, grad, x_new, grad_new, p;
  double log_prob, log_prob_new = 0.0, energy = 0.0, step_size;
  int64_t path_length = 0;
  Xoshiro256pp rng;
  DualAveraging adaptation;

  ChainState(const Target& t, const double* initial, const HMCSettings& s, uint64_t chain,
             const ChainOutput& o)
      : target(t), settings(s), out(o), x(initial, initial + t.dim()), grad(t.dim()),
        x_new(t.dim()), grad_new(t.dim()), p(t.dim()), step_size(s.step_size), rng(s.seed, chain),
        adaptation(s.step_size, s.target_accept) {
    log_prob = target.log_prob_and_grad(x.data(), grad.data());
  }

  void begin() {
    const int64_t d = target.dim();
    // Draw order (path length, momentum, accept uniform) is fixed: the Numba twin follows it.
    path_length =
        settings.random_steps
            ? 1 + static_cast<int64_t>(rng.uniform() * static_cast<double>(settings.num_steps))
            : settings.num_steps;
    rng.normals(p.data(), d);
    energy = -log_prob + sum_squares_half(p.data(), d);
    x_new = x;
    grad_new = grad;
  }

  void finish(int64_t iter) {
    const int64_t d = target.dim();
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
      return;
    }
    const int64_t draw = iter - settings.num_warmup;
    for (int64_t i = 0; i < d; ++i) out.samples[draw * d + i] = x[i];
    out.log_prob[draw] = log_prob;
    out.accept_prob[draw] = accept_prob;
    out.divergent[draw] = energy_error > settings.max_energy_error;
    out.num_steps[draw] = static_cast<int32_t>(path_length);
  }
};

/// Runs chain `chain` of the seed's streams from `initial` (dim values; log p must be finite there).
template <class Target>
void hmc_chain(const Target& target, const double* initial, const HMCSettings& settings,
               uint64_t chain, const ChainOutput& out) {
  ChainState<Target> state(target, initial, settings, chain, out);
  const int64_t total = settings.num_warmup + settings.num_samples;
  for (int64_t iter = 0; iter < total; ++iter) {
    state.begin();
    state.log_prob_new = leapfrog(target, state.x_new.data(), state.p.data(),
                                  state.grad_new.data(), state.step_size, state.path_length);
    state.finish(iter);
  }
  *out.step_size = state.step_size;
}

/// The leapfrog integrations of up to W chains of a fixed-dimension target, interleaved step by
/// step. One chain's leapfrog is a chain of dependent floating-point operations (latency-bound);
/// W independent chains in one loop body keep the core's pipelines busy. Each chain's arithmetic
/// is exactly leapfrog_fixed's, so its draws do not depend on which chains share its group.
template <class Target, int W, int D = Target::kDim>
void leapfrog_group(const Target& target, ChainState<Target>* const* lanes, int count) {
  double x[W][D], p[W][D], g[W][D], eps[W], log_prob[W];
  int64_t length[W];
  int64_t longest = 0;
  for (int w = 0; w < W; ++w) {
    const bool real = w < count;  // padding lanes integrate zeros and are never written back
    for (int i = 0; i < D; ++i) {
      x[w][i] = real ? lanes[w]->x_new[i] : 0.0;
      p[w][i] = real ? lanes[w]->p[i] : 0.0;
      g[w][i] = real ? lanes[w]->grad_new[i] : 0.0;
    }
    eps[w] = real ? lanes[w]->step_size : 0.0;
    length[w] = real ? lanes[w]->path_length : 0;
    log_prob[w] = 0.0;
    longest = std::max(longest, length[w]);
  }
  for (int w = 0; w < W; ++w)
    for (int i = 0; i < D; ++i) p[w][i] += (0.5 * eps[w]) * g[w][i];
  bool same_length = count == W;
  for (int w = 1; w < W; ++w) same_length = same_length && length[w] == length[0];
  if (same_length) {  // fixed path length: no per-lane test, the compiler unrolls over lanes
    for (int64_t step = 0; step < longest; ++step) {
      const bool last = step + 1 == longest;
      for (int w = 0; w < W; ++w) {
        for (int i = 0; i < D; ++i) x[w][i] += eps[w] * p[w][i];
        log_prob[w] = target.log_prob_and_grad(x[w], g[w]);
        const double kick = last ? 0.5 * eps[w] : eps[w];
        for (int i = 0; i < D; ++i) p[w][i] += kick * g[w][i];
      }
    }
  } else {
    for (int64_t step = 0; step < longest; ++step) {
      for (int w = 0; w < W; ++w) {
        if (step >= length[w]) continue;  // this chain's path is shorter (random_steps)
        for (int i = 0; i < D; ++i) x[w][i] += eps[w] * p[w][i];
        log_prob[w] = target.log_prob_and_grad(x[w], g[w]);
        const double kick = step + 1 < length[w] ? eps[w] : 0.5 * eps[w];
        for (int i = 0; i < D; ++i) p[w][i] += kick * g[w][i];
      }
    }
  }
  for (int w = 0; w < count; ++w) {
    for (int i = 0; i < D; ++i) {
      lanes[w]->x_new[i] = x[w][i];
      lanes[w]->p[i] = p[w][i];
      lanes[w]->grad_new[i] = g[w][i];
    }
    lanes[w]->log_prob_new = log_prob[w];
  }
}

/// Chains first_chain .. first_chain + count - 1 (count <= W), integrated together.
template <class Target, int W>
void hmc_chain_group(const Target& target, const double* initial, const HMCSettings& settings,
                     int64_t first_chain, int count, const ChainOutput* outs) {
  const int64_t d = target.dim();
  std::vector<ChainState<Target>> states;
  states.reserve(count);
  for (int w = 0; w < count; ++w)
    states.emplace_back(target, initial + (first_chain + w) * d, settings,
                        static_cast<uint64_t>(first_chain + w), outs[w]);
  ChainState<Target>* lanes[W];
  for (int w = 0; w < count; ++w) lanes[w] = &states[w];
  const int64_t total = settings.num_warmup + settings.num_samples;
  for (int64_t iter = 0; iter < total; ++iter) {
    for (auto& state : states) state.begin();
    leapfrog_group<Target, W>(target, lanes, count);
    for (auto& state : states) state.finish(iter);
  }
  for (int w = 0; w < count; ++w) *outs[w].step_size = states[w].step_size;
}

/// Chains per interleaved group for fixed-dimension targets (see leapfrog_group).
constexpr int kChainGroup = 8;

/// All chains: grouped and interleaved when the target's dimension is a compile-time constant,
/// one at a time otherwise; groups (or chains) spread over threads. Either way chain c's draws
/// depend only on (seed, c).
template <class Target>
void hmc_chains(const Target& target, const double* initial, const HMCSettings& settings,
                int64_t num_chains, const std::vector<ChainOutput>& outs, int num_threads) {
  if constexpr (HasFixedDim<Target>::value) {
    const int64_t groups = (num_chains + kChainGroup - 1) / kChainGroup;
    parallel_for(groups, num_threads, [&](int64_t group) {
      const int64_t first = group * kChainGroup;
      const int count = static_cast<int>(std::min<int64_t>(kChainGroup, num_chains - first));
      if (count == 1) {  // a lone chain: the register-resident scalar path is faster
        hmc_chain(target, initial + first * target.dim(), settings, static_cast<uint64_t>(first),
                  outs[first]);
        return;
      }
      hmc_chain_group<Target, kChainGroup>(target, initial, settings, first, count,
                                           outs.data() + first);
    });
  } else {
    parallel_for(num_chains, num_threads, [&](int64_t c) {
      hmc_chain(target, initial + c * target.dim(), settings, static_cast<uint64_t>(c), outs[c]);
    });
  }
}

}  // namespace pyvi
