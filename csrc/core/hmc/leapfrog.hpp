// The leapfrog (Stormer-Verlet) integrator for H(x, p) = -log p(x) + K(p): the only one in the core.
//
// Half kicks at both ends and full kicks between drifts: L steps cost L gradient evaluations and
// the gradient at the start is reused from the previous transition. W chains ("lanes") are
// integrated together, step by step: one chain's leapfrog is a chain of dependent floating-point
// operations (latency-bound), and W independent ones in one loop body keep the core's pipelines
// busy; W = 1 is the single-chain case. Each lane's arithmetic is the same whatever the others,
// so a chain's draws never depend on its group. pyvi/_numba/hmc/leapfrog.py is the Numba twin,
// statement for statement.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), Sec. 2.3, arXiv:1206.1901.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../targets/target.hpp"

namespace pyvi::hmc {

/// The lanes of one integration: lane w's position, momentum and gradient (dim values each,
/// updated in place; on entry grad is the gradient of log p at x), its step size and number of
/// steps; log_prob[w] receives log p at its end point. Lanes count..W-1 are unused.
template <int W>
struct Lanes {
  int count = 0;
  double* x[W] = {};
  double* p[W] = {};
  double* grad[W] = {};
  double step_size[W] = {};
  int64_t num_steps[W] = {};
  double log_prob[W] = {};
};

namespace detail {

/// The integration of W lanes whose rows x(w), p(w), g(w) the accessors return. Padding lanes
/// (step size 0, no steps) are integrated along only where that saves a test per lane.
template <int W, class Target, class Metric, class X, class P, class G, class Dim>
inline void leapfrog_steps(const Target& target, const Metric& metric, X x, P p, G g,
                           const double (&eps)[W], const int64_t (&length)[W], double (&log_prob)[W],
                           int count, Dim d) {
  int64_t longest = 0;
  bool same_length = count == W;
  for (int w = 0; w < W; ++w) {
    for (int64_t i = 0; i < d; ++i) p(w)[i] += (0.5 * eps[w]) * g(w)[i];
    longest = std::max(longest, length[w]);
    same_length = same_length && length[w] == length[0];
  }
  if (same_length) {  // fixed path length: no per-lane test, the compiler unrolls over lanes
    for (int64_t step = 0; step < longest; ++step) {
      const bool last = step + 1 == longest;
      for (int w = 0; w < W; ++w) {
        metric.drift(x(w), p(w), eps[w], d);
        log_prob[w] = target.log_prob_and_grad(x(w), g(w));
        const double kick = last ? 0.5 * eps[w] : eps[w];
        for (int64_t i = 0; i < d; ++i) p(w)[i] += kick * g(w)[i];
      }
    }
  } else {
    for (int64_t step = 0; step < longest; ++step) {
      for (int w = 0; w < W; ++w) {
        if (step >= length[w]) continue;  // this lane's path is shorter (random_steps), or padding
        metric.drift(x(w), p(w), eps[w], d);
        log_prob[w] = target.log_prob_and_grad(x(w), g(w));
        const double kick = step + 1 < length[w] ? eps[w] : 0.5 * eps[w];
        for (int64_t i = 0; i < d; ++i) p(w)[i] += kick * g(w)[i];
      }
    }
  }
}

}  // namespace detail

/// Integrates every lane of `lanes` for its number of steps, in place.
///
/// For a target of compile-time dimension the lanes are copied into local arrays first: the
/// compiler keeps them in registers and knows that no store to them changes the target, which it
/// cannot assume through the caller's pointers. Targets of run-time dimension integrate one chain
/// at a time, in place.
template <int W, class Target, class Metric>
void leapfrog(const Target& target, const Metric& metric, Lanes<W>& lanes) {
  static_assert(HasFixedDim<Target>::value || W == 1,
                "targets of run-time dimension integrate one lane at a time");
  // A group of one lane is always full: as a constant, the tests of padding lanes compile away.
  const int count = W == 1 ? 1 : lanes.count;
  double eps[W], log_prob[W];
  int64_t length[W];
  for (int w = 0; w < W; ++w) {
    const bool real = w < count;  // padding lanes integrate zeros and are never written back
    eps[w] = real ? lanes.step_size[w] : 0.0;
    length[w] = real ? lanes.num_steps[w] : 0;
    log_prob[w] = 0.0;
  }
  if constexpr (HasFixedDim<Target>::value) {
    constexpr int D = Target::kDim;
    double x[W][D], p[W][D], g[W][D];
    for (int w = 0; w < W; ++w) {
      const bool real = w < count;
      for (int i = 0; i < D; ++i) {
        x[w][i] = real ? lanes.x[w][i] : 0.0;
        p[w][i] = real ? lanes.p[w][i] : 0.0;
        g[w][i] = real ? lanes.grad[w][i] : 0.0;
      }
    }
    detail::leapfrog_steps<W>(
        target, metric, [&](int w) -> double* { return x[w]; }, [&](int w) -> double* { return p[w]; },
        [&](int w) -> double* { return g[w]; }, eps, length, log_prob, count,
        std::integral_constant<int64_t, D>{});
    for (int w = 0; w < count; ++w) {
      for (int i = 0; i < D; ++i) {
        lanes.x[w][i] = x[w][i];
        lanes.p[w][i] = p[w][i];
        lanes.grad[w][i] = g[w][i];
      }
    }
  } else {
    detail::leapfrog_steps<W>(
        target, metric, [&](int w) { return lanes.x[w]; }, [&](int w) { return lanes.p[w]; },
        [&](int w) { return lanes.grad[w]; }, eps, length, log_prob, count, target.dim());
  }
  for (int w = 0; w < count; ++w) lanes.log_prob[w] = log_prob[w];
}

}  // namespace pyvi::hmc
