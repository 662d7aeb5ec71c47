// Log densities the native HMC knows. Each target exposes
//   int64_t dim() const;
//   double log_prob_and_grad(const double* x, double* grad) const;
// and HMC is a template over it, so a new target costs one struct here and one binding.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/banana.h"

namespace pyvi {

/// The banana posterior of Problem 3 (see common/banana.h), O(1) per evaluation.
struct BananaTarget {
  static constexpr int kDim = 2;
  BananaParams<double> params;
  int64_t dim() const { return kDim; }
  double log_prob_and_grad(const double* x, double* grad) const {
    return banana_log_joint(params, x[0], x[1], grad);
  }
};

/// A d-dimensional Gaussian N(mean, precision^-1); with identity precision HMC's leapfrog
/// integrates a harmonic oscillator, which the physics tests use.
struct GaussianTarget {
  std::vector<double> mean;       // (d,)
  std::vector<double> precision;  // (d, d), row-major, symmetric positive definite
  double log_norm;                // -d/2 log(2 pi) + 1/2 log det(precision)
  int64_t dim() const { return static_cast<int64_t>(mean.size()); }
  double log_prob_and_grad(const double* x, double* grad) const {
    const int64_t d = dim();
    double quad = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      double row = 0.0;
      for (int64_t j = 0; j < d; ++j) row += precision[i * d + j] * (x[j] - mean[j]);
      grad[i] = -row;
      quad += (x[i] - mean[i]) * row;
    }
    return log_norm - 0.5 * quad;
  }
};

}  // namespace pyvi
