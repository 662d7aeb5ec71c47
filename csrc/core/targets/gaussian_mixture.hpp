// A mixture of K Gaussians sum_k w_k N(x; mean_k, precision_k^-1) as a native target, O(K d^2).
// The log coefficients log w_k + log N's normaliser come from Python (pyvi.targets.GaussianMixture),
// computed once for every backend.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../validate.hpp"

namespace pyvi {

struct GaussianMixtureTarget {
  /// The per-component log terms live on the stack (a target is shared by the chains' threads).
  static constexpr int64_t kMaxComponents = 64;
  int64_t num_components, num_dims;
  std::vector<double> log_coef;    // (K,) log w_k - d/2 log(2 pi) + 1/2 log det(precision_k)
  std::vector<double> means;       // (K, d)
  std::vector<double> precisions;  // (K, d, d), each symmetric positive definite

  int64_t dim() const { return num_dims; }

  /// log N term of component k (without the gradient) and, when grad is given, grad += scale * d/dx.
  double component(int64_t k, const double* x, double* grad, double scale) const {
    const int64_t d = num_dims;
    const double* mean = means.data() + k * d;
    const double* precision = precisions.data() + k * d * d;
    double quad = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      double row = 0.0;
      for (int64_t j = 0; j < d; ++j) row += precision[i * d + j] * (x[j] - mean[j]);
      if (grad != nullptr) grad[i] -= scale * row;
      quad += (x[i] - mean[i]) * row;
    }
    return log_coef[k] - 0.5 * quad;
  }

  // log sum_k exp(q_k) = m + log sum_k exp(q_k - m); the gradient is the responsibility-weighted
  // sum of the components' gradients. The order of operations is the Numba face's
  // (pyvi/_numba/targets/gaussian_mixture.py): bit-equal results.
  double log_prob_and_grad(const double* x, double* grad) const {
    double terms[kMaxComponents];
    double top = -INFINITY;
    for (int64_t k = 0; k < num_components; ++k) {
      terms[k] = component(k, x, nullptr, 0.0);
      if (terms[k] > top) top = terms[k];
    }
    for (int64_t i = 0; i < num_dims; ++i) grad[i] = 0.0;
    double total = 0.0;
    for (int64_t k = 0; k < num_components; ++k) {
      const double weight = std::exp(terms[k] - top);
      total += weight;
      component(k, x, grad, weight);
    }
    for (int64_t i = 0; i < num_dims; ++i) grad[i] /= total;
    return top + std::log(total);
  }

  static GaussianMixtureTarget make(const DoubleArray& log_coef, const DoubleArray& means, const DoubleArray& precisions) {
    require_ndim(log_coef, 1, "log_coef");
    require_ndim(means, 2, "means");
    require_ndim(precisions, 3, "precisions");
    const py::ssize_t k = log_coef.size(), d = means.shape(1);
    if (k < 1 || k > kMaxComponents) fail("the mixture must have 1 to " + std::to_string(kMaxComponents) + " components");
    if (d < 1) fail("means must have at least one column");
    if (means.shape(0) != k) fail("means must have one row per component");
    if (precisions.shape(0) != k || precisions.shape(1) != d || precisions.shape(2) != d)
      fail("precisions must have shape (K, d, d) = (" + std::to_string(k) + ", " + std::to_string(d) + ", " +
           std::to_string(d) + ")");
    require_finite(log_coef, "log_coef");
    require_finite(means, "means");
    require_finite(precisions, "precisions");
    return {k, d, std::vector<double>(log_coef.data(), log_coef.data() + k),
            std::vector<double>(means.data(), means.data() + k * d),
            std::vector<double>(precisions.data(), precisions.data() + k * d * d)};
  }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<GaussianMixtureTarget>(m, "GaussianMixtureTarget")
        .def(py::init(&GaussianMixtureTarget::make), py::arg("log_coef"), py::arg("means"), py::arg("precisions"),
             "sum_k exp(log_coef_k) exp(-1/2 (x - mean_k)^T precision_k (x - mean_k)).")
        .def_property_readonly("num_components", [](const GaussianMixtureTarget& t) { return t.num_components; })
        .def_property_readonly("dim", &GaussianMixtureTarget::dim);
  }
};

}  // namespace pyvi
