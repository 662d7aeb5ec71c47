// The identity metric (mass matrix M = I): momentum draws, kinetic energy and the position drift.
//
// The one place that knows M: p ~ N(0, M), K(p) = p^T M^-1 p / 2, dx/dt = M^-1 p. The leapfrog
// and the transition take the metric as a template parameter; a diagonal or dense metric is
// another struct with these three members. pyvi/_numba/hmc/metric.py is the Numba twin.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics" (2011), Sec. 4.1, arXiv:1206.1901.
#pragma once

#include <cstdint>

#include "../../common/rng.h"

namespace pyvi::hmc {

struct IdentityMetric {
  /// p ~ N(0, I), from the chain's stream.
  void sample_momentum(Xoshiro256pp& rng, double* p, int64_t d) const { rng.normals(p, d); }

  /// |p|^2 / 2.
  double kinetic_energy(const double* p, int64_t d) const {
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) s += p[i] * p[i];
    return 0.5 * s;
  }

  /// x += step_size * p. `Dim` is int64_t or, for a fixed-dimension target, an integral_constant.
  template <class Dim>
  void drift(double* x, const double* p, double step_size, Dim d) const {
    for (int64_t i = 0; i < d; ++i) x[i] += step_size * p[i];
  }
};

}  // namespace pyvi::hmc
