// The NUTS driver: each chain's warm-up (step size by dual averaging, the metric in Stan's
// windows) and sampling, recorded with the per-draw statistics of a NUTS run. It also runs static
// HMC with a diagonal or dense metric (metric_transition.hpp), on the same warm-up.
//
// One chain at a time per thread (a NUTS trajectory's length varies from draw to draw, so chains
// are not integrated in lanes). Chain c draws from random stream (seed, first_chain + c): its
// initial step-size search, then per transition its momentum and the tree's uniforms (nuts.hpp), so
// the draws never depend on the thread count (first_chain: where a process's share of a
// distributed run starts, pyvi/distributed.py). pyvi/_numba/hmc/nuts_driver.py is the Numba twin.
//
// References:
//   Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithms 4 and 6, arXiv:1111.4246.
//   Stan, src/stan/mcmc/hmc/base_hmc.hpp (init_stepsize), adapt_diag_e_nuts.hpp (the order of the
//   warm-up's updates).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../../common/rng.h"
#include "../parallel.hpp"
#include "dual_averaging.hpp"
#include "metric.hpp"
#include "metric_transition.hpp"
#include "nuts.hpp"
#include "start.hpp"
#include "state.hpp"
#include "windowed_adaptation.hpp"

namespace pyvi::hmc {

enum class MetricKind : int { kIdentity = 0, kDiag = 1, kDense = 2 };

/// One NUTS run's settings (validated at the binding boundary).
struct NutsSettings {
  int64_t num_samples, num_warmup, thin;
  bool save_warmup;
  double step_size;  // the initial one when adapting
  int64_t max_tree_depth;
  double max_energy_error;
  bool adapt_step_size, adapt_metric;
  double target_accept;
  uint64_t seed;
  int64_t init_buffer, term_buffer, base_window;  // Stan's 75, 50, 25
  bool static_hmc;        // the kernel: static HMC (metric_transition.hpp) instead of NUTS
  int64_t num_steps;      // static HMC: L, or its maximum when random_steps
  bool random_steps;
  uint64_t first_chain;   // these chains are first_chain, first_chain + 1, ... of a larger run
};

/// The rows each chain records: ceil(num_warmup / thin) warm-up rows first when save_warmup,
/// then ceil(num_samples / thin).
inline int64_t warmup_rows(const NutsSettings& s) { return s.save_warmup ? (s.num_warmup + s.thin - 1) / s.thin : 0; }
inline int64_t sample_rows(const NutsSettings& s) { return (s.num_samples + s.thin - 1) / s.thin; }

/// The outputs (allocated by nuts_draws in nuts_bindings.cpp), each of shape (num_chains, rows, ...)
/// but step_size (num_chains,) and inv_metric (num_chains, d) or (num_chains, d, d).
struct NutsDraws {
  int64_t rows, dim;
  double* samples;
  double* log_prob;
  double* accept_prob;
  bool* divergent;
  int32_t* num_steps;
  int32_t* tree_depth;
  double* energy;
  double* energy_error;
  double* step_size;
  double* inv_metric;

  void record(int64_t chain, int64_t row, const State& state, const NutsInfo& info) const {
    const int64_t at = chain * rows + row;
    for (int64_t i = 0; i < dim; ++i) samples[at * dim + i] = state.x[i];
    log_prob[at] = state.log_prob;
    accept_prob[at] = info.accept_prob;
    divergent[at] = info.divergent;
    num_steps[at] = static_cast<int32_t>(info.num_steps);
    tree_depth[at] = static_cast<int32_t>(info.tree_depth);
    energy[at] = info.energy;
    energy_error[at] = info.energy_error;
  }
};

/// Stan's init_stepsize: from `step_size`, double (or halve) it while one leapfrog step from `state`
/// with a fresh momentum is accepted with probability above (below) 0.8; returns the first step
/// size past that point. The search stops at 1e7 and at the smallest positive double (where Stan
/// raises) and keeps the last step size reached.
template <class Target, class Metric>
double find_initial_step(const Target& target, const Metric& metric, Xoshiro256pp& rng, const State& state,
                         double step_size, std::vector<double>& x, std::vector<double>& p, std::vector<double>& g) {
  if (!(step_size > 0.0) || step_size > 1e7) return step_size;
  const int64_t d = static_cast<int64_t>(x.size());
  const double log_08 = std::log(0.8);
  auto delta_h = [&]() {
    for (int64_t i = 0; i < d; ++i) {
      x[i] = state.x[i];
      g[i] = state.grad[i];
    }
    metric.sample_momentum(rng, p.data(), d);
    const double h0 = -state.log_prob + metric.kinetic_energy(p.data(), d);
    const double log_prob = nuts_detail::leapfrog_step(target, metric, x.data(), p.data(), g.data(), step_size, d);
    double h = -log_prob + metric.kinetic_energy(p.data(), d);
    if (!std::isfinite(h)) h = std::numeric_limits<double>::infinity();  // as a divergent leaf (nuts.hpp)
    return h0 - h;
  };
  const int direction = delta_h() > log_08 ? 1 : -1;
  while (true) {
    const double dh = delta_h();
    if (direction == 1 && !(dh > log_08)) break;
    if (direction == -1 && !(dh < log_08)) break;
    const double next = direction == 1 ? 2.0 * step_size : 0.5 * step_size;
    if (!(next > 0.0) || next > 1e7) break;
    step_size = next;
  }
  return step_size;
}

/// One chain between chunks of iterations: its state, stream, metric (M^-1 and its Cholesky
/// factor), warm-up schedule, estimator, dual averaging and step size. The transition's workspace is
/// scratch (every transition sets it up afresh).
struct NutsChain {
  State state;
  Xoshiro256pp rng;
  NutsWorkspace ws;
  std::vector<double> x, p, g;  // the step-size search's scratch
  std::vector<double> inv_mass, chol;
  WindowSchedule schedule;
  MetricEstimator estimator;
  DualAveraging adaptation;
  double step_size;

  NutsChain(int64_t d, const NutsSettings& s, MetricKind kind, int64_t c)
      : state(d), rng(s.seed, s.first_chain + static_cast<uint64_t>(c)), ws(d, static_cast<int>(s.max_tree_depth)), x(d), p(d),
        g(d), inv_mass(kind == MetricKind::kDense ? d * d : d, kind == MetricKind::kDense ? 0.0 : 1.0),
        chol(kind == MetricKind::kDense ? d * d : 0, 0.0),
        schedule(s.num_warmup, s.init_buffer, s.term_buffer, s.base_window,
                 s.adapt_metric && kind != MetricKind::kIdentity),
        estimator(schedule.num_warmup > 0 ? d : 0, kind == MetricKind::kDense),
        adaptation(s.step_size, s.target_accept),
        step_size(s.step_size) {
    // M^-1 starts at the identity (Stan's default), its Cholesky factor too.
    if (kind == MetricKind::kDense)
      for (int64_t i = 0; i < d; ++i) inv_mass[i * d + i] = chol[i * d + i] = 1.0;
  }
};

/// Iterations [begin, end) of chain `ch` (number c), with the metric `Metric` viewing its M^-1.
template <class Target, class Metric>
void advance_chain(const Target& target, const Metric& metric, const NutsSettings& s, NutsChain& ch, int64_t c,
                   int64_t begin, int64_t end, const NutsDraws& draws) {
  State& state = ch.state;
  for (int64_t it = begin; it < end; ++it) {
    if (it == 0 && s.adapt_step_size && s.num_warmup > 0) {
      ch.step_size = find_initial_step(target, metric, ch.rng, state, ch.step_size, ch.x, ch.p, ch.g);
      ch.adaptation = DualAveraging(ch.step_size, s.target_accept);
    }
    const NutsInfo info =
        s.static_hmc
            ? static_transition(target, metric, ch.ws, ch.rng, state, ch.step_size, s.num_steps, s.random_steps,
                                s.max_energy_error)
            : nuts_transition(target, metric, ch.ws, ch.rng, state, ch.step_size, s.max_tree_depth,
                              s.max_energy_error);
    if (it < s.num_warmup) {
      if (s.save_warmup && it % s.thin == 0) draws.record(c, it / s.thin, state, info);
      if (s.adapt_step_size) ch.step_size = ch.adaptation.update(info.accept_prob);
      WindowSchedule& schedule = ch.schedule;
      if (schedule.num_warmup > 0) {
        if (schedule.in_window()) ch.estimator.add(state.x.data());
        if (schedule.end_of_window()) {
          schedule.compute_next_window();
          ch.estimator.finish(ch.inv_mass.data(), ch.chol.data());
          ch.estimator.restart();
          if (s.adapt_step_size) {
            ch.step_size = find_initial_step(target, metric, ch.rng, state, ch.step_size, ch.x, ch.p, ch.g);
            ch.adaptation = DualAveraging(ch.step_size, s.target_accept);
          }
        }
        ++schedule.counter;
      }
      if (s.adapt_step_size && it + 1 == s.num_warmup) ch.step_size = ch.adaptation.final_step();
      continue;
    }
    const int64_t draw = it - s.num_warmup;
    if (draw % s.thin == 0) draws.record(c, warmup_rows(s) + draw / s.thin, state, info);
  }
  // The step size and metric so far (after the last chunk: the adapted ones).
  draws.step_size[c] = ch.step_size;
  for (size_t i = 0; i < ch.inv_mass.size(); ++i)
    draws.inv_metric[c * static_cast<int64_t>(ch.inv_mass.size()) + static_cast<int64_t>(i)] = ch.inv_mass[i];
}

/// A run of every chain, advanced in chunks of iterations (the start evaluates every chain's
/// initial point: start_faults() says where it is not finite); the draws never depend on how the
/// run is cut.
template <class Target>
class NutsSampler {
 public:
  NutsSampler(const Target& target, const double* initial, int64_t num_chains, const NutsSettings& s,
              MetricKind kind)
      : target_(target), settings_(s), kind_(kind) {
    const int64_t d = target.dim();
    chains_.reserve(num_chains);
    for (int64_t c = 0; c < num_chains; ++c) {
      chains_.emplace_back(d, s, kind, c);
      start_chain(target, initial, c, chains_.back().state, faults_);
    }
  }

  /// The first chains whose start has a non-finite log density or gradient.
  const StartFaults& start_faults() const { return faults_; }

  int64_t num_iterations() const { return settings_.num_warmup + settings_.num_samples; }

  /// Iterations [begin, end) of every chain, chains spread over threads.
  void advance(int64_t begin, int64_t end, const NutsDraws& draws, int num_threads) {
    parallel_for(static_cast<int64_t>(chains_.size()), num_threads, [&](int64_t c) {
      NutsChain& ch = chains_[c];
      switch (kind_) {
        case MetricKind::kIdentity:
          return advance_chain(target_, IdentityMetric{}, settings_, ch, c, begin, end, draws);
        case MetricKind::kDiag:
          return advance_chain(target_, DiagMetric{ch.inv_mass.data()}, settings_, ch, c, begin, end, draws);
        case MetricKind::kDense:
          return advance_chain(target_, DenseMetric{ch.inv_mass.data(), ch.chol.data()}, settings_, ch, c, begin,
                               end, draws);
      }
    });
  }

 private:
  const Target& target_;
  NutsSettings settings_;
  MetricKind kind_;
  std::vector<NutsChain> chains_;
  StartFaults faults_;
};

}  // namespace pyvi::hmc
