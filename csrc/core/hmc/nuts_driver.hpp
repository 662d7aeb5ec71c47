// The NUTS driver: each chain's warm-up (step size by dual averaging, the metric in Stan's
// windows) and sampling, recorded with the per-draw statistics of a NUTS run. It also runs static
// HMC with a diagonal or dense metric (metric_transition.hpp), on the same warm-up.
//
// One chain at a time per thread (a NUTS trajectory's length varies from draw to draw, so chains
// are not integrated in lanes). Chain c draws from random stream (seed, c): its initial step-size
// search, then per transition its momentum and the tree's uniforms (nuts.hpp), so the draws never
// depend on the thread count. pyvi/_numba/hmc/nuts_driver.py is the Numba twin.
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
    if (std::isnan(h)) h = std::numeric_limits<double>::infinity();
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

/// Chain c, start to finish, with the metric `Metric` whose M^-1 lives in inv_mass (and chol).
template <class Target, class Metric>
void run_nuts_chain(const Target& target, const Metric& metric, const double* initial, const NutsSettings& s,
                    int64_t c, const NutsDraws& draws, std::vector<double>& inv_mass, std::vector<double>& chol,
                    MetricKind kind) {
  const int64_t d = target.dim();
  State state(d);
  for (int64_t i = 0; i < d; ++i) state.x[i] = initial[c * d + i];
  state.log_prob = target.log_prob_and_grad(state.x.data(), state.grad.data());
  Xoshiro256pp rng(s.seed, static_cast<uint64_t>(c));
  NutsWorkspace ws(d, static_cast<int>(s.max_tree_depth));
  std::vector<double> x(d), p(d), g(d);
  WindowSchedule schedule(s.num_warmup, s.init_buffer, s.term_buffer, s.base_window,
                          s.adapt_metric && kind != MetricKind::kIdentity);
  MetricEstimator estimator(schedule.num_warmup > 0 ? d : 0, kind == MetricKind::kDense);
  double step_size = s.step_size;
  if (s.adapt_step_size && s.num_warmup > 0) step_size = find_initial_step(target, metric, rng, state, step_size, x, p, g);
  DualAveraging adaptation(step_size, s.target_accept);
  const int64_t first_sample_row = warmup_rows(s);
  for (int64_t it = 0; it < s.num_warmup + s.num_samples; ++it) {
    const NutsInfo info =
        s.static_hmc
            ? static_transition(target, metric, ws, rng, state, step_size, s.num_steps, s.random_steps,
                                s.max_energy_error)
            : nuts_transition(target, metric, ws, rng, state, step_size, s.max_tree_depth, s.max_energy_error);
    if (it < s.num_warmup) {
      if (s.save_warmup && it % s.thin == 0) draws.record(c, it / s.thin, state, info);
      if (s.adapt_step_size) step_size = adaptation.update(info.accept_prob);
      if (schedule.num_warmup > 0) {
        if (schedule.in_window()) estimator.add(state.x.data());
        if (schedule.end_of_window()) {
          schedule.compute_next_window();
          estimator.finish(inv_mass.data(), chol.data());
          estimator.restart();
          if (s.adapt_step_size) {
            step_size = find_initial_step(target, metric, rng, state, step_size, x, p, g);
            adaptation = DualAveraging(step_size, s.target_accept);
          }
        }
        ++schedule.counter;
      }
      if (s.adapt_step_size && it + 1 == s.num_warmup) step_size = adaptation.final_step();
      continue;
    }
    const int64_t draw = it - s.num_warmup;
    if (draw % s.thin == 0) draws.record(c, first_sample_row + draw / s.thin, state, info);
  }
  draws.step_size[c] = step_size;
  const int64_t size = kind == MetricKind::kDense ? d * d : d;
  for (int64_t i = 0; i < size; ++i) draws.inv_metric[c * size + i] = kind == MetricKind::kIdentity ? 1.0 : inv_mass[i];
}

/// All chains from `initial` (num_chains, dim), where log p is finite, spread over threads.
template <class Target>
void run_nuts(const Target& target, const double* initial, const NutsSettings& s, MetricKind kind,
              int64_t num_chains, const NutsDraws& draws, int num_threads) {
  const int64_t d = target.dim();
  parallel_for(num_chains, num_threads, [&](int64_t c) {
    // M^-1 starts at the identity (Stan's default), its Cholesky factor too.
    std::vector<double> inv_mass(kind == MetricKind::kDense ? d * d : d, 0.0), chol;
    if (kind == MetricKind::kDense) {
      chol.assign(d * d, 0.0);
      for (int64_t i = 0; i < d; ++i) inv_mass[i * d + i] = chol[i * d + i] = 1.0;
    } else {
      for (auto& v : inv_mass) v = 1.0;
    }
    switch (kind) {
      case MetricKind::kIdentity:
        return run_nuts_chain(target, IdentityMetric{}, initial, s, c, draws, inv_mass, chol, kind);
      case MetricKind::kDiag:
        return run_nuts_chain(target, DiagMetric{inv_mass.data()}, initial, s, c, draws, inv_mass, chol, kind);
      case MetricKind::kDense:
        return run_nuts_chain(target, DenseMetric{inv_mass.data(), chol.data()}, initial, s, c, draws, inv_mass,
                              chol, kind);
    }
  });
}

}  // namespace pyvi::hmc
