// One No-U-Turn transition of one chain: multinomial sampling of the trajectory and the
// generalised no-U-turn criterion with the checks across merged subtrees, as Stan's base_nuts.hpp.
//
// Stan builds each doubling recursively; here the same tree is built iteratively, leaf by leaf
// (one leapfrog step each), in the order the recursion visits it: a completed subtree of height k
// whose index among its siblings is even is the "initial" half of its parent and waits in a slot;
// an odd one is the "final" half and merges at once with the waiting one, drawing the same random
// number the recursion draws there. So the random stream, the arithmetic and the result are
// Stan's, and the Numba twin (pyvi/_numba/hmc/nuts.py) needs no recursion. The numpy reference
// (pyvi/hmc/reference_nuts.py) is the recursive form; a test checks that they agree.
//
// Per transition, in this order: the momentum; then per doubling a uniform for the direction, the
// subtree (a uniform per merge), a uniform for the biased progressive sample when the new subtree
// weighs less than the old trajectory.
//
// References:
//   Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), arXiv:1111.4246.
//   Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), Appendix A,
//   arXiv:1701.02434 (multinomial sampling, the generalised criterion, biased progressive sampling).
//   Stan, src/stan/mcmc/hmc/nuts/base_nuts.hpp (the checks across merged subtrees, Stan 2.26).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../common/rng.h"
#include "state.hpp"

namespace pyvi::hmc {

/// What one NUTS transition did (Stan's sampler parameters; ArviZ's sample_stats).
struct NutsInfo {
  double accept_prob = 0.0;   // mean Metropolis acceptance over the trajectory's new points
  double energy = 0.0;        // H at the selected point
  double energy_error = 0.0;  // H(selected) - H(start)
  bool divergent = false;     // a leapfrog step whose energy error exceeds max_energy_error
  int64_t num_steps = 0;      // leapfrog steps
  int64_t tree_depth = 0;     // doublings kept (== max_tree_depth: the tree was cut at its limit)
};

/// log(exp(a) + exp(b)), exact when a is -inf (Stan's math::log_sum_exp).
inline double log_sum_exp(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  if (a > b) return a + std::log1p(std::exp(b - a));
  return b + std::log1p(std::exp(a - b));
}

/// The scratch of a chain's NUTS transitions, allocated once: the trajectory's two ends, its
/// selected point, and max_depth + 1 slots for the subtrees being built (rows of d values).
struct NutsWorkspace {
  int64_t d;
  // The ends (Stan's z_fwd, z_bck): position, momentum, gradient, log p.
  std::vector<double> x_end[2], p_end[2], g_end[2];
  double lp_end[2] = {0.0, 0.0};
  // The selected point (z_sample): position, gradient, log p, H.
  std::vector<double> x_sample, g_sample;
  double lp_sample = 0.0, h_sample = 0.0;
  // Momentum and velocity at the four ends of the backward and forward subtrees, the summed momenta.
  std::vector<double> p_bck_bck, s_bck_bck, p_bck_fwd, s_bck_fwd, p_fwd_bck, s_fwd_bck, p_fwd_fwd, s_fwd_fwd;
  std::vector<double> rho, rho_bck, rho_fwd, rho_extended;
  // Slots: a subtree's proposal (position, gradient, log p, H), weight, summed momenta, and the
  // momentum and velocity at its first and last points. Row s of each (num_slots, d) array.
  int num_slots;
  std::vector<double> x_prop, g_prop, lp_prop, h_prop, log_weight, rho_slot, p_first, s_first, p_last, s_last;
  std::vector<int> waiting;  // waiting[k]: the slot of the initial half at height k
  std::vector<int> free_slots;

  NutsWorkspace(int64_t dim, int max_depth)
      : d(dim), x_sample(dim), g_sample(dim), p_bck_bck(dim), s_bck_bck(dim), p_bck_fwd(dim), s_bck_fwd(dim),
        p_fwd_bck(dim), s_fwd_bck(dim), p_fwd_fwd(dim), s_fwd_fwd(dim), rho(dim), rho_bck(dim), rho_fwd(dim),
        rho_extended(dim), num_slots(max_depth + 1), x_prop(num_slots * dim), g_prop(num_slots * dim),
        lp_prop(num_slots), h_prop(num_slots), log_weight(num_slots), rho_slot(num_slots * dim),
        p_first(num_slots * dim), s_first(num_slots * dim), p_last(num_slots * dim), s_last(num_slots * dim),
        waiting(num_slots), free_slots(num_slots) {
    for (int e = 0; e < 2; ++e) {
      x_end[e].resize(dim);
      p_end[e].resize(dim);
      g_end[e].resize(dim);
    }
  }
};

namespace nuts_detail {

inline double dot(const double* a, const double* b, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

inline void copy(const double* from, double* to, int64_t d) {
  for (int64_t i = 0; i < d; ++i) to[i] = from[i];
}

/// The generalised no-U-turn criterion between two ends of a trajectory with summed momenta rho.
inline bool criterion(const double* v_minus, const double* v_plus, const double* rho, int64_t d) {
  return dot(v_plus, rho, d) > 0.0 && dot(v_minus, rho, d) > 0.0;
}

/// One leapfrog step of signed size eps from (x, p, g): the kick-drift-kick of leapfrog.hpp.
template <class Target, class Metric>
double leapfrog_step(const Target& target, const Metric& metric, double* x, double* p, double* g, double eps,
                     int64_t d) {
  for (int64_t i = 0; i < d; ++i) p[i] += (0.5 * eps) * g[i];
  metric.drift(x, p, eps, d);
  const double log_prob = target.log_prob_and_grad(x, g);
  for (int64_t i = 0; i < d; ++i) p[i] += (0.5 * eps) * g[i];
  return log_prob;
}

}  // namespace nuts_detail

/// Builds a subtree of 2^height leapfrog steps from end `e` (0 backward, 1 forward) of the
/// trajectory; returns its slot, or -1 when it is invalid (a divergence or a U-turn inside it:
/// Stan's build_tree returning false). Tallies steps, summed acceptance and divergence into info.
template <class Target, class Metric>
int build_tree(const Target& target, const Metric& metric, NutsWorkspace& ws, Xoshiro256pp& rng, int e,
               int64_t height, double eps, double h0, double max_energy_error, NutsInfo& info,
               double& sum_accept) {
  using namespace nuts_detail;
  const int64_t d = ws.d;
  int num_free = ws.num_slots;
  for (int s = 0; s < ws.num_slots; ++s) ws.free_slots[s] = ws.num_slots - 1 - s;
  double* x = ws.x_end[e].data();
  double* p = ws.p_end[e].data();
  double* g = ws.g_end[e].data();
  const int64_t num_leaves = int64_t{1} << height;
  for (int64_t leaf = 0; leaf < num_leaves; ++leaf) {
    // The leaf: one step, its weight exp(H0 - h), a subtree of height 0.
    const double log_prob = leapfrog_step(target, metric, x, p, g, eps, d);
    ws.lp_end[e] = log_prob;
    ++info.num_steps;
    double h = -log_prob + metric.kinetic_energy(p, d);
    // NaN, or -inf where log p is +inf (a user's target may return it): the extreme of divergence.
    if (!std::isfinite(h)) h = std::numeric_limits<double>::infinity();
    if (h - h0 > max_energy_error) info.divergent = true;
    sum_accept += h0 - h > 0.0 ? 1.0 : std::exp(h0 - h);
    int cur = ws.free_slots[--num_free];
    double* xs = &ws.x_prop[cur * d];
    double* gs = &ws.g_prop[cur * d];
    copy(x, xs, d);
    copy(g, gs, d);
    ws.lp_prop[cur] = log_prob;
    ws.h_prop[cur] = h;
    ws.log_weight[cur] = h0 - h;
    metric.velocity(p, &ws.s_first[cur * d], d);
    copy(&ws.s_first[cur * d], &ws.s_last[cur * d], d);
    copy(p, &ws.rho_slot[cur * d], d);
    copy(p, &ws.p_first[cur * d], d);
    copy(p, &ws.p_last[cur * d], d);
    if (info.divergent) return -1;
    // Merge upwards while the completed subtree is the final half of its parent.
    for (int64_t k = 0; k < height && ((leaf >> k) & 1); ++k) {
      const int init = ws.waiting[k];
      const double w_subtree = log_sum_exp(ws.log_weight[init], ws.log_weight[cur]);
      bool take_final = ws.log_weight[cur] > w_subtree;
      if (!take_final) take_final = rng.uniform() < std::exp(ws.log_weight[cur] - w_subtree);
      // The merged subtree lives in the initial half's slot.
      if (take_final) {
        copy(&ws.x_prop[cur * d], &ws.x_prop[init * d], d);
        copy(&ws.g_prop[cur * d], &ws.g_prop[init * d], d);
        ws.lp_prop[init] = ws.lp_prop[cur];
        ws.h_prop[init] = ws.h_prop[cur];
      }
      ws.log_weight[init] = w_subtree;
      double* rho_init = &ws.rho_slot[init * d];
      const double* rho_final = &ws.rho_slot[cur * d];
      double* rho_ext = ws.rho_extended.data();
      // rho_ext = rho_init + p_first(final): before rho_init becomes the merged sum.
      for (int64_t i = 0; i < d; ++i) rho_ext[i] = rho_init[i] + ws.p_first[cur * d + i];
      bool persist = criterion(&ws.s_first[init * d], &ws.s_first[cur * d], rho_ext, d);
      for (int64_t i = 0; i < d; ++i) rho_ext[i] = rho_final[i] + ws.p_last[init * d + i];
      persist = criterion(&ws.s_last[init * d], &ws.s_last[cur * d], rho_ext, d) && persist;
      for (int64_t i = 0; i < d; ++i) rho_init[i] = rho_init[i] + rho_final[i];
      persist = criterion(&ws.s_first[init * d], &ws.s_last[cur * d], rho_init, d) && persist;
      copy(&ws.p_last[cur * d], &ws.p_last[init * d], d);
      copy(&ws.s_last[cur * d], &ws.s_last[init * d], d);
      ws.free_slots[num_free++] = cur;
      cur = init;
      if (!persist) return -1;
    }
    if (leaf + 1 < num_leaves) {
      // cur is an initial half: its height is the number of trailing ones of leaf.
      int64_t k = 0;
      while ((leaf >> k) & 1) ++k;
      ws.waiting[k] = cur;
    } else {
      return cur;
    }
  }
  return -1;  // not reached
}

/// One NUTS transition of one chain from `state` (moved in place), with the chain's metric and
/// step size. The momentum comes from the chain's stream, then the doublings (see the file's head).
template <class Target, class Metric>
NutsInfo nuts_transition(const Target& target, const Metric& metric, NutsWorkspace& ws, Xoshiro256pp& rng,
                         State& state, double step_size, int64_t max_depth, double max_energy_error) {
  using namespace nuts_detail;
  const int64_t d = ws.d;
  NutsInfo info;
  double* p0 = ws.p_end[1].data();
  metric.sample_momentum(rng, p0, d);
  for (int e = 0; e < 2; ++e) {
    copy(state.x.data(), ws.x_end[e].data(), d);
    copy(state.grad.data(), ws.g_end[e].data(), d);
    ws.lp_end[e] = state.log_prob;
  }
  copy(p0, ws.p_end[0].data(), d);
  const double h0 = -state.log_prob + metric.kinetic_energy(p0, d);
  metric.velocity(p0, ws.s_fwd_fwd.data(), d);
  copy(ws.s_fwd_fwd.data(), ws.s_fwd_bck.data(), d);
  copy(ws.s_fwd_fwd.data(), ws.s_bck_fwd.data(), d);
  copy(ws.s_fwd_fwd.data(), ws.s_bck_bck.data(), d);
  copy(p0, ws.p_fwd_fwd.data(), d);
  copy(p0, ws.p_fwd_bck.data(), d);
  copy(p0, ws.p_bck_fwd.data(), d);
  copy(p0, ws.p_bck_bck.data(), d);
  copy(p0, ws.rho.data(), d);
  copy(state.x.data(), ws.x_sample.data(), d);
  copy(state.grad.data(), ws.g_sample.data(), d);
  ws.lp_sample = state.log_prob;
  ws.h_sample = h0;
  double log_sum_weight = 0.0;  // log(exp(H0 - H0))
  double sum_accept = 0.0;
  while (info.tree_depth < max_depth) {
    const bool forward = rng.uniform() > 0.5;
    if (forward) {
      copy(ws.rho.data(), ws.rho_bck.data(), d);
      copy(ws.p_fwd_fwd.data(), ws.p_bck_fwd.data(), d);
      copy(ws.s_fwd_fwd.data(), ws.s_bck_fwd.data(), d);
    } else {
      copy(ws.rho.data(), ws.rho_fwd.data(), d);
      copy(ws.p_bck_bck.data(), ws.p_fwd_bck.data(), d);
      copy(ws.s_bck_bck.data(), ws.s_fwd_bck.data(), d);
    }
    const int e = forward ? 1 : 0;
    const int sub = build_tree(target, metric, ws, rng, e, info.tree_depth, forward ? step_size : -step_size, h0,
                               max_energy_error, info, sum_accept);
    if (sub < 0) break;
    // The new subtree's first and last points are the inner and outer ends of its side.
    if (forward) {
      copy(&ws.rho_slot[sub * d], ws.rho_fwd.data(), d);
      copy(&ws.p_first[sub * d], ws.p_fwd_bck.data(), d);
      copy(&ws.s_first[sub * d], ws.s_fwd_bck.data(), d);
      copy(&ws.p_last[sub * d], ws.p_fwd_fwd.data(), d);
      copy(&ws.s_last[sub * d], ws.s_fwd_fwd.data(), d);
    } else {
      copy(&ws.rho_slot[sub * d], ws.rho_bck.data(), d);
      copy(&ws.p_first[sub * d], ws.p_bck_fwd.data(), d);
      copy(&ws.s_first[sub * d], ws.s_bck_fwd.data(), d);
      copy(&ws.p_last[sub * d], ws.p_bck_bck.data(), d);
      copy(&ws.s_last[sub * d], ws.s_bck_bck.data(), d);
    }
    ++info.tree_depth;
    // Biased progressive sampling: favour the new subtree.
    const double w_subtree = ws.log_weight[sub];
    bool take = w_subtree > log_sum_weight;
    if (!take) take = rng.uniform() < std::exp(w_subtree - log_sum_weight);
    if (take) {
      copy(&ws.x_prop[sub * d], ws.x_sample.data(), d);
      copy(&ws.g_prop[sub * d], ws.g_sample.data(), d);
      ws.lp_sample = ws.lp_prop[sub];
      ws.h_sample = ws.h_prop[sub];
    }
    log_sum_weight = log_sum_exp(log_sum_weight, w_subtree);
    for (int64_t i = 0; i < d; ++i) ws.rho[i] = ws.rho_bck[i] + ws.rho_fwd[i];
    bool persist = criterion(ws.s_bck_bck.data(), ws.s_fwd_fwd.data(), ws.rho.data(), d);
    double* rho_ext = ws.rho_extended.data();
    for (int64_t i = 0; i < d; ++i) rho_ext[i] = ws.rho_bck[i] + ws.p_fwd_bck[i];
    persist = criterion(ws.s_bck_bck.data(), ws.s_fwd_bck.data(), rho_ext, d) && persist;
    for (int64_t i = 0; i < d; ++i) rho_ext[i] = ws.rho_fwd[i] + ws.p_bck_fwd[i];
    persist = criterion(ws.s_bck_fwd.data(), ws.s_fwd_fwd.data(), rho_ext, d) && persist;
    if (!persist) break;
  }
  info.accept_prob = sum_accept / static_cast<double>(info.num_steps);
  info.energy = ws.h_sample;
  info.energy_error = ws.h_sample - h0;
  copy(ws.x_sample.data(), state.x.data(), d);
  copy(ws.g_sample.data(), state.grad.data(), d);
  state.log_prob = ws.lp_sample;
  return info;
}

}  // namespace pyvi::hmc
