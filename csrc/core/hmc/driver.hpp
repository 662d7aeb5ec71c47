// The HMC driver: warm-up and sampling of every chain, in groups spread over threads.
//
// Each transition's info goes to the adaptation (dual averaging of the step size) during warm-up
// and into the draws afterwards. Chain c draws from random stream (seed, first_chain + c) whatever
// its group or thread, so the draws never depend on either (first_chain: where a process's share of
// a distributed run starts, pyvi/distributed.py). pyvi/_numba/hmc/driver.py is the Numba twin.
//
// References:
//   Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Sec. 3.2, arXiv:1111.4246 (adaptation).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../parallel.hpp"
#include "../targets/target.hpp"
#include "dual_averaging.hpp"
#include "metric.hpp"
#include "state.hpp"
#include "transition.hpp"

namespace pyvi::hmc {

/// The outputs, each of shape (num_chains, ...) (allocated by hmc_draws in hmc_bindings.cpp).
struct Draws {
  int64_t num_samples, dim;
  double* samples;      // (num_chains, num_samples, dim)
  double* log_prob;     // (num_chains, num_samples)
  double* accept_prob;  // (num_chains, num_samples)
  bool* divergent;      // (num_chains, num_samples)
  int32_t* num_steps;   // (num_chains, num_samples) path length used
  double* step_size;    // (num_chains,) the step size used for sampling

  void record(int64_t chain, int64_t draw, const State& state, const Info& info) const {
    const int64_t at = chain * num_samples + draw;
    // A loop, not std::copy: a memmove call costs more than the few values of a small target.
    for (int64_t i = 0; i < dim; ++i) samples[at * dim + i] = state.x[i];
    log_prob[at] = state.log_prob;
    accept_prob[at] = info.accept_prob;
    divergent[at] = info.divergent;
    num_steps[at] = static_cast<int32_t>(info.num_steps);
  }
};

/// Chains first .. first + count - 1 (count <= W), integrated together, from `initial` (num_chains,
/// dim), where log p is finite.
template <int W, class Target, class Metric>
void run_group(const Target& target, const Metric& metric, const double* initial, const Settings& settings,
               int64_t first, int count, const Draws& draws) {
  const int64_t d = target.dim();
  std::vector<Chain> chains;
  std::vector<DualAveraging> adaptations;
  chains.reserve(count);
  adaptations.reserve(count);
  Chain* lanes[W];
  for (int w = 0; w < count; ++w) {
    const int64_t c = first + w;
    chains.emplace_back(d, settings.seed, settings.first_chain + static_cast<uint64_t>(c), settings.step_size);
    State& state = chains.back().state;
    std::copy(initial + c * d, initial + (c + 1) * d, state.x.begin());
    state.log_prob = target.log_prob_and_grad(state.x.data(), state.grad.data());
    adaptations.emplace_back(settings.step_size, settings.target_accept);
  }
  for (int w = 0; w < count; ++w) lanes[w] = &chains[w];
  Info infos[W];
  const int64_t total = settings.num_warmup + settings.num_samples;
  for (int64_t iter = 0; iter < total; ++iter) {
    transition<W>(target, metric, settings.kernel, lanes, count, infos);
    for (int w = 0; w < count; ++w) {
      if (iter < settings.num_warmup) {
        if (settings.adapt_step_size) {
          chains[w].step_size = adaptations[w].update(infos[w].accept_prob);
          if (iter + 1 == settings.num_warmup) chains[w].step_size = adaptations[w].final_step();
        }
        continue;
      }
      draws.record(first + w, iter - settings.num_warmup, chains[w].state, infos[w]);
    }
  }
  for (int w = 0; w < count; ++w) draws.step_size[first + w] = chains[w].step_size;
}

/// Chains per interleaved group for fixed-dimension targets (see leapfrog.hpp).
constexpr int kChainGroup = 8;

/// All chains: in groups of kChainGroup (a lone chain on the single-lane path) when the target's
/// dimension is a compile-time constant, one at a time otherwise; groups spread over threads.
template <class Target>
void run_chains(const Target& target, const double* initial, const Settings& settings, int64_t num_chains,
                const Draws& draws, int num_threads) {
  const IdentityMetric metric;
  const int64_t group = HasFixedDim<Target>::value ? kChainGroup : 1;
  parallel_for((num_chains + group - 1) / group, num_threads, [&](int64_t g) {
    const int64_t first = g * group;
    const int count = static_cast<int>(std::min<int64_t>(group, num_chains - first));
    if constexpr (HasFixedDim<Target>::value) {
      if (count > 1) return run_group<kChainGroup>(target, metric, initial, settings, first, count, draws);
    }
    run_group<1>(target, metric, initial, settings, first, count, draws);
  });
}

}  // namespace pyvi::hmc
