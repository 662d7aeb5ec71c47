// The hybrid Rosenbrock distribution of Pagani, Wiegand & Nadarajah as a native target, O(d):
//   log p(x) = log_norm - a (x_1 - mu)^2 - sum_{j=1}^{n2} sum_{i=2}^{n1} b_{j,i} (x_{j,i} - x_{j,i-1}^2)^2,
// with x_{j,1} = x_1 shared by the n2 blocks and x = (x_1, block 1's x_{1,2..n1}, block 2's, ...).
// Its normaliser is known and it is sampled exactly by its chain of conditionals (pyvi.targets).
//
// Pagani, Wiegand & Nadarajah, "An n-dimensional Rosenbrock distribution for Markov chain Monte
// Carlo testing", Scandinavian Journal of Statistics 49 (2022), arXiv:1903.09556, eq. 9.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../validate.hpp"

namespace pyvi {

struct HybridRosenbrockTarget {
  double mu, a;
  int64_t block_size, num_blocks;  // n1 (x_1 included), n2
  std::vector<double> b;           // (n2, n1 - 1): b_{j,i} for i = 2..n1
  double log_norm;                 // -log Z, from Python

  int64_t dim() const { return 1 + num_blocks * (block_size - 1); }

  // The order of operations is the Numba face's (pyvi/_numba/targets/hybrid_rosenbrock.py).
  double log_prob_and_grad(const double* x, double* grad) const {
    const double r0 = x[0] - mu;
    grad[0] = -2.0 * a * r0;
    double lp = -a * r0 * r0;
    const int64_t per_block = block_size - 1;
    for (int64_t j = 0; j < num_blocks; ++j) {
      int64_t prev_index = 0;
      for (int64_t i = 0; i < per_block; ++i) {
        const int64_t index = 1 + j * per_block + i;
        const double prev = x[prev_index];
        const double r = x[index] - prev * prev;
        const double bb = b[j * per_block + i];
        lp -= bb * r * r;
        grad[index] = -2.0 * bb * r;
        grad[prev_index] += 4.0 * bb * r * prev;
        prev_index = index;
      }
    }
    return log_norm + lp;
  }

  static HybridRosenbrockTarget make(double mu, double a, const DoubleArray& b, double log_norm) {
    require_finite(mu, "mu");
    require_positive(a, "a");
    require_ndim(b, 2, "b");
    if (b.shape(0) < 1 || b.shape(1) < 1) fail("b must have shape (n2, n1 - 1) with n1 >= 2 and n2 >= 1");
    require_finite(b, "b");
    for (py::ssize_t i = 0; i < b.size(); ++i)
      if (!(b.data()[i] > 0.0)) fail("b must contain only values > 0");
    require_finite(log_norm, "log_norm");
    return {mu, a, b.shape(1) + 1, b.shape(0), std::vector<double>(b.data(), b.data() + b.size()), log_norm};
  }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<HybridRosenbrockTarget>(m, "HybridRosenbrockTarget")
        .def(py::init(&HybridRosenbrockTarget::make), py::arg("mu"), py::arg("a"), py::arg("b"), py::arg("log_norm"),
             "The hybrid Rosenbrock density with b of shape (n2, n1 - 1) (Pagani et al. 2022, eq. 9).")
        .def_property_readonly("dim", &HybridRosenbrockTarget::dim);
  }
};

}  // namespace pyvi
