// The leapfrog (Stormer-Verlet) integrator for H(x, p) = -log p(x) + |p|^2 / 2 (identity mass).
//
// Half kicks at both ends and full kicks between drifts: L steps cost L gradient evaluations and
// the gradient at the start is reused from the previous transition.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), Sec. 2.3, arXiv:1206.1901.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pyvi {

/// Integrates num_steps steps in place. On entry grad holds the gradient of log p at x; on exit x,
/// p and grad are the end state and the return value is log p at the end.
template <class Target>
double leapfrog(const Target& target, double* x, double* p, double* grad, double step_size,
                int64_t num_steps);

/// Targets whose dimension is a compile-time constant (Target::kDim) integrate on local copies:
/// the compiler keeps them in registers, which it cannot do through the caller's pointers (they
/// might alias). Same operations in the same order as the general loop below.
template <class Target, int D = Target::kDim>
double leapfrog_fixed(const Target& target, double* x_out, double* p_out, double* grad_out,
                      double step_size, int64_t num_steps) {
  double x[D], p[D], grad[D];
  for (int i = 0; i < D; ++i) x[i] = x_out[i], p[i] = p_out[i], grad[i] = grad_out[i];
  const double half = 0.5 * step_size;
  double log_prob = 0.0;
  for (int i = 0; i < D; ++i) p[i] += half * grad[i];
  for (int64_t step = 0; step < num_steps; ++step) {
    for (int i = 0; i < D; ++i) x[i] += step_size * p[i];
    log_prob = target.log_prob_and_grad(x, grad);
    const double kick = step + 1 < num_steps ? step_size : half;
    for (int i = 0; i < D; ++i) p[i] += kick * grad[i];
  }
  for (int i = 0; i < D; ++i) x_out[i] = x[i], p_out[i] = p[i], grad_out[i] = grad[i];
  return log_prob;
}

template <class Target, class = void>
struct HasFixedDim : std::false_type {};
template <class Target>
struct HasFixedDim<Target, std::void_t<decltype(Target::kDim)>> : std::true_type {};

template <class Target>
double leapfrog(const Target& target, double* x, double* p, double* grad, double step_size,
                int64_t num_steps) {
  if constexpr (HasFixedDim<Target>::value) {
    return leapfrog_fixed(target, x, p, grad, step_size, num_steps);
  }
  const int64_t d = target.dim();
  const double half = 0.5 * step_size;
  double log_prob = 0.0;
  for (int64_t i = 0; i < d; ++i) p[i] += half * grad[i];
  for (int64_t step = 0; step < num_steps; ++step) {
    for (int64_t i = 0; i < d; ++i) x[i] += step_size * p[i];
    log_prob = target.log_prob_and_grad(x, grad);
    const double kick = step + 1 < num_steps ? step_size : half;
    for (int64_t i = 0; i < d; ++i) p[i] += kick * grad[i];
  }
  return log_prob;
}

}  // namespace pyvi
