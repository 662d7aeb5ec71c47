// The HMC driver: warm-up and sampling of every chain, in groups spread over threads.
//
// Each transition's info goes to the adaptation (dual averaging of the step size) during warm-up
// and into the draws afterwards. Chain c draws from random stream (seed, first_chain + c) whatever
// its group, thread or the chunks a run is cut into, so the draws never depend on any of them
// (first_chain: where a process's share of a distributed run starts, pyvi/distributed.py).
// pyvi/_numba/hmc/driver.py is the Numba twin.
//
// References:
//   Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Sec. 3.2, arXiv:1111.4246 (adaptation).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../parallel.hpp"
#include "../targets/target.hpp"
#include "dual_averaging.hpp"
#include "metric.hpp"
#include "start.hpp"
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

/// A group of chains integrated together (W lanes, see leapfrog.hpp): their states, random streams,
/// step sizes and adaptations, kept between chunks of iterations.
struct ChainGroup {
  int64_t first;  // chains first .. first + size() - 1
  std::vector<Chain> chains;
  std::vector<DualAveraging> adaptations;

  int size() const { return static_cast<int>(chains.size()); }
};

/// Iterations [begin, end) of one group of count <= W chains (warm-up first, then sampling).
template <int W, class Target, class Metric>
void run_group(const Target& target, const Metric& metric, const Settings& settings, ChainGroup& group,
               int64_t begin, int64_t end, const Draws& draws) {
  const int count = group.size();
  Chain* const chains = group.chains.data();
  DualAveraging* const adaptations = group.adaptations.data();
  Chain* lanes[W];
  for (int w = 0; w < count; ++w) lanes[w] = &chains[w];
  Info infos[W];
  const int64_t num_warmup = settings.num_warmup;
  // Warm-up and sampling as two loops: no test of the phase per iteration.
  for (int64_t iter = begin; iter < std::min(end, num_warmup); ++iter) {
    transition<W>(target, metric, settings.kernel, lanes, count, infos);
    if (settings.adapt_step_size) {
      for (int w = 0; w < count; ++w) {
        chains[w].step_size = adaptations[w].update(infos[w].accept_prob);
        if (iter + 1 == num_warmup) chains[w].step_size = adaptations[w].final_step();
      }
    }
  }
  for (int64_t iter = std::max(begin, num_warmup); iter < end; ++iter) {
    transition<W>(target, metric, settings.kernel, lanes, count, infos);
    for (int w = 0; w < count; ++w) draws.record(group.first + w, iter - num_warmup, chains[w].state, infos[w]);
  }
  for (int w = 0; w < count; ++w) draws.step_size[group.first + w] = chains[w].step_size;
}

/// Chains per interleaved group for fixed-dimension targets (see leapfrog.hpp).
constexpr int kChainGroup = 8;

/// Every chain of one run, advanced in chunks of iterations: advance(n) runs the next n iterations
/// of every chain. A chain keeps its state, stream, step size and adaptation between chunks, so
/// its arithmetic, and its draws, do not depend on where a run is cut (pyvi.hmc runs the chunks
/// from Python: between two of them it reports progress and Ctrl-C can stop the run).
///
/// Chains run in groups of kChainGroup (a lone chain on the single-lane path) when the target's
/// dimension is a compile-time constant, one at a time otherwise; groups spread over threads.
template <class Target>
class Sampler {
 public:
  /// Chains from the rows of `initial` (num_chains x dim); log p and its gradient are evaluated
  /// there (start_faults() says where they are not finite).
  Sampler(const Target& target, const double* initial, int64_t num_chains, const Settings& settings)
      : target_(target), settings_(settings) {
    const int64_t d = target.dim();
    const int64_t width = HasFixedDim<Target>::value ? kChainGroup : 1;
    groups_.resize((num_chains + width - 1) / width);
    for (int64_t g = 0; g < static_cast<int64_t>(groups_.size()); ++g) {
      ChainGroup& group = groups_[g];
      group.first = g * width;
      const int64_t count = std::min(width, num_chains - group.first);
      group.chains.reserve(count);
      group.adaptations.reserve(count);
      for (int64_t c = group.first; c < group.first + count; ++c) {
        group.chains.emplace_back(d, settings.seed, settings.first_chain + static_cast<uint64_t>(c), settings.step_size);
        start_chain(target, initial, c, group.chains.back().state, faults_);
        group.adaptations.emplace_back(settings.step_size, settings.target_accept);
      }
    }
  }

  /// The first chains whose start has a non-finite log density or gradient.
  const StartFaults& start_faults() const { return faults_; }

  int64_t iteration() const { return iteration_; }
  int64_t num_iterations() const { return settings_.num_warmup + settings_.num_samples; }

  /// Runs iterations [iteration(), iteration() + iterations) of every chain (clipped to the run)
  /// into `draws`, the groups over `num_threads` threads (0: all cores).
  void advance(int64_t iterations, const Draws& draws, int num_threads) {
    const int64_t begin = iteration_, end = begin + std::min(iterations, num_iterations() - begin);
    const IdentityMetric metric;
    parallel_for(static_cast<int64_t>(groups_.size()), num_threads, [&](int64_t g) {
      ChainGroup& group = groups_[g];
      if constexpr (HasFixedDim<Target>::value) {
        if (group.size() > 1)
          return run_group<kChainGroup>(target_, metric, settings_, group, begin, end, draws);
      }
      run_group<1>(target_, metric, settings_, group, begin, end, draws);
    });
    iteration_ = end;
  }

 private:
  const Target& target_;
  Settings settings_;
  std::vector<ChainGroup> groups_;
  StartFaults faults_;
  int64_t iteration_ = 0;
};

}  // namespace pyvi::hmc
