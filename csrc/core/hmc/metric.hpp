// The metric (mass matrix M): momentum draws, kinetic energy, velocity and the position drift.
//
// The one place that knows M: p ~ N(0, M), K(p) = p^T M^-1 p / 2, dx/dt = M^-1 p (the velocity,
// Stan's dtau_dp or "p sharp"). The leapfrog and the transitions take the metric as a template
// parameter. Each metric stores M^-1 (Stan's inv_e_metric, what the warm-up estimates) in a
// buffer its chain owns: the diagonal one its d entries, the dense one the d x d matrix and its
// lower Cholesky factor L (M^-1 = L L^T, so p = L^-T z has covariance M). pyvi/_numba/hmc/metric.py
// is the Numba twin, operation for operation.
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics" (2011), Sec. 4.1, arXiv:1206.1901.
//   Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), Sec. 4.2,
//   arXiv:1701.02434 (the metric as the inverse of the target's covariance).
#pragma once

#include <cmath>
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

  /// v = M^-1 p = p.
  void velocity(const double* p, double* v, int64_t d) const {
    for (int64_t i = 0; i < d; ++i) v[i] = p[i];
  }

  /// x += step_size * p. `Dim` is int64_t or, for a fixed-dimension target, an integral_constant.
  template <class Dim>
  void drift(double* x, const double* p, double step_size, Dim d) const {
    for (int64_t i = 0; i < d; ++i) x[i] += step_size * p[i];
  }
};

/// M^-1 = diag(inv_mass).
struct DiagMetric {
  const double* inv_mass;  // (d,)

  /// p_i = z_i / sqrt(inv_mass_i), z ~ N(0, I) (Stan's diag_e_metric::sample_p).
  void sample_momentum(Xoshiro256pp& rng, double* p, int64_t d) const {
    rng.normals(p, d);
    for (int64_t i = 0; i < d; ++i) p[i] = p[i] / std::sqrt(inv_mass[i]);
  }

  double kinetic_energy(const double* p, int64_t d) const {
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) s += inv_mass[i] * p[i] * p[i];
    return 0.5 * s;
  }

  void velocity(const double* p, double* v, int64_t d) const {
    for (int64_t i = 0; i < d; ++i) v[i] = inv_mass[i] * p[i];
  }

  template <class Dim>
  void drift(double* x, const double* p, double step_size, Dim d) const {
    for (int64_t i = 0; i < d; ++i) x[i] += step_size * (inv_mass[i] * p[i]);
  }
};

/// M^-1 = inv_mass (d x d, row-major, symmetric positive definite) = L L^T.
struct DenseMetric {
  const double* inv_mass;  // (d, d)
  const double* chol;      // (d, d) L, lower triangular (the upper triangle is never read)

  /// p = L^-T z, z ~ N(0, I): back substitution of L^T p = z (Stan's dense_e_metric::sample_p).
  void sample_momentum(Xoshiro256pp& rng, double* p, int64_t d) const {
    rng.normals(p, d);
    for (int64_t i = d - 1; i >= 0; --i) {
      double s = p[i];
      for (int64_t j = i + 1; j < d; ++j) s -= chol[j * d + i] * p[j];
      p[i] = s / chol[i * d + i];
    }
  }

  double kinetic_energy(const double* p, int64_t d) const {
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      double row = 0.0;
      for (int64_t j = 0; j < d; ++j) row += inv_mass[i * d + j] * p[j];
      s += p[i] * row;
    }
    return 0.5 * s;
  }

  void velocity(const double* p, double* v, int64_t d) const {
    for (int64_t i = 0; i < d; ++i) {
      double row = 0.0;
      for (int64_t j = 0; j < d; ++j) row += inv_mass[i * d + j] * p[j];
      v[i] = row;
    }
  }

  template <class Dim>
  void drift(double* x, const double* p, double step_size, Dim d) const {
    for (int64_t i = 0; i < d; ++i) {
      double row = 0.0;
      for (int64_t j = 0; j < d; ++j) row += inv_mass[i * d + j] * p[j];
      x[i] += step_size * row;
    }
  }
};

}  // namespace pyvi::hmc
