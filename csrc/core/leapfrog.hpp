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

template <class Target, class = void>
struct HasFixedDim : std::false_type {};
template <class Target>
struct HasFixedDim<Target, std::void_t<decltype(Target::kDim)>> : std::true_type {};

/// The integration loop over a dimension `d` that is either an int64_t or, for targets with a
/// compile-time Target::kDim, a std::integral_constant (so the loops over i unroll).
template <class Target, class Dim>
double leapfrog_loop(const Target& target, double* x, double* p, double* grad, double step_size,
                     int64_t num_steps, Dim d) {
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

/// Integrates num_steps steps in place. On entry grad holds the gradient of log p at x; on exit x,
/// p and grad are the end state and the return value is log p at the end.
///
/// Targets with a compile-time dimension integrate on local copies: the compiler keeps them in
/// registers, which it cannot do through the caller's pointers (they might alias).
template <class Target>
double leapfrog(const Target& target, double* x_out, double* p_out, double* grad_out,
                double step_size, int64_t num_steps) {
  if constexpr (HasFixedDim<Target>::value) {
    constexpr int D = Target::kDim;
    double x[D], p[D], grad[D];
    for (int i = 0; i < D; ++i) x[i] = x_out[i], p[i] = p_out[i], grad[i] = grad_out[i];
    const double log_prob = leapfrog_loop(target, x, p, grad, step_size, num_steps,
                                          std::integral_constant<int64_t, D>{});
    for (int i = 0; i < D; ++i) x_out[i] = x[i], p_out[i] = p[i], grad_out[i] = grad[i];
    return log_prob;
  } else {
    return leapfrog_loop(target, x_out, p_out, grad_out, step_size, num_steps, target.dim());
  }
}

}  // namespace pyvi
