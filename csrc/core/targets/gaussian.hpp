// A d-dimensional Gaussian N(mean, precision^-1) as a native target; with identity precision HMC's
// leapfrog integrates a harmonic oscillator, which the physics tests use.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../validate.hpp"

namespace pyvi {

struct GaussianTarget {
  std::vector<double> mean;       // (d,)
  std::vector<double> precision;  // (d, d), row-major, symmetric positive definite
  double log_norm;                // -d/2 log(2 pi) + 1/2 log det(precision), given by the caller

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

  /// The normaliser is an argument, not computed here: pyvi.targets.Gaussian computes it once and
  /// hands the same value to every backend (two computations differ in the last bit, and the
  /// step-size adaptation turns one bit into different draws).
  static GaussianTarget make(const DoubleArray& mean, const DoubleArray& precision, double log_norm) {
    require_ndim(mean, 1, "mean");
    require_ndim(precision, 2, "precision");
    const py::ssize_t d = mean.size();
    if (d < 1) fail("mean must hold at least one value");
    if (precision.shape(0) != d || precision.shape(1) != d)
      fail("precision must have shape (d, d) with d = len(mean) = " + std::to_string(d));
    require_finite(mean, "mean");
    require_finite(precision, "precision");
    require_finite(log_norm, "log_norm");
    const double* P = precision.data();
    for (py::ssize_t i = 0; i < d; ++i)
      for (py::ssize_t j = 0; j < i; ++j)
        if (std::abs(P[i * d + j] - P[j * d + i]) > 1e-12 * (std::abs(P[i * d + j]) + std::abs(P[j * d + i])))
          fail("precision must be symmetric");
    // Cholesky: fails exactly when precision is not positive definite.
    std::vector<double> L(P, P + d * d);
    for (py::ssize_t j = 0; j < d; ++j) {
      double diag = L[j * d + j];
      for (py::ssize_t k = 0; k < j; ++k) diag -= L[j * d + k] * L[j * d + k];
      if (!(diag > 0.0)) fail("precision must be positive definite");
      diag = std::sqrt(diag);
      L[j * d + j] = diag;
      for (py::ssize_t i = j + 1; i < d; ++i) {
        double v = L[i * d + j];
        for (py::ssize_t k = 0; k < j; ++k) v -= L[i * d + k] * L[j * d + k];
        L[i * d + j] = v / diag;
      }
    }
    return {std::vector<double>(mean.data(), mean.data() + d), std::vector<double>(P, P + d * d), log_norm};
  }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<GaussianTarget>(m, "GaussianTarget")
        .def(py::init(&GaussianTarget::make), py::arg("mean"), py::arg("precision"), py::arg("log_norm"),
             "N(mean, precision^-1) with the given log normaliser -d/2 log(2 pi) + 1/2 log det(precision).")
        .def_property_readonly("log_norm", [](const GaussianTarget& t) { return t.log_norm; })
        .def_property_readonly("dim", &GaussianTarget::dim);
  }
};

}  // namespace pyvi
