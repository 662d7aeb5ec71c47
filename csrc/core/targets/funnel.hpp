// Neal's funnel as a native target: v ~ N(0, v_scale^2), x_i | v ~ N(0, e^v), i = 1..d-1, in its
// centred form over (v, x), or non-centred over (v~, x~) ~ N(0, I) with v = v_scale v~ and
// x_i = e^{v/2} x~_i (then the density the sampler sees is a standard normal). Normalised.
//
// Neal, "Slice sampling", Annals of Statistics 31 (2003), section 8.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>

#include "../validate.hpp"

namespace pyvi {

struct FunnelTarget {
  int64_t num_dims;  // d = 1 + the number of x's
  double v_scale;    // sd of v (Neal: 3)
  bool centred;
  double log_norm;  // -d/2 log(2 pi) - log(v_scale) centred, -d/2 log(2 pi) non-centred (from Python)

  int64_t dim() const { return num_dims; }

  // The order of operations is the Numba face's (pyvi/_numba/targets/funnel.py): bit-equal results.
  double log_prob_and_grad(const double* x, double* grad) const {
    if (!centred) {
      double sum = 0.0;
      for (int64_t i = 0; i < num_dims; ++i) {
        sum += x[i] * x[i];
        grad[i] = -x[i];
      }
      return log_norm - 0.5 * sum;
    }
    const double v = x[0];
    const double inv_var = 1.0 / (v_scale * v_scale);
    const double precision = std::exp(-v);  // of each x_i given v
    const double n = static_cast<double>(num_dims - 1);
    double sum = 0.0;
    for (int64_t i = 1; i < num_dims; ++i) {
      sum += x[i] * x[i];
      grad[i] = -x[i] * precision;
    }
    grad[0] = -v * inv_var - 0.5 * n + 0.5 * precision * sum;
    return log_norm - 0.5 * v * v * inv_var - 0.5 * n * v - 0.5 * precision * sum;
  }

  static FunnelTarget make(int64_t dim, double v_scale, bool centred, double log_norm) {
    require_at_least(dim, 2, "dim");
    require_positive(v_scale, "v_scale");
    require_finite(log_norm, "log_norm");
    return {dim, v_scale, centred, log_norm};
  }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<FunnelTarget>(m, "FunnelTarget")
        .def(py::init(&FunnelTarget::make), py::arg("dim"), py::arg("v_scale"), py::arg("centred"), py::arg("log_norm"),
             "Neal's funnel over (v, x_1..x_{d-1}) (centred) or its standard-normal reparameterisation.")
        .def_property_readonly("centred", [](const FunnelTarget& t) { return t.centred; })
        .def_property_readonly("dim", &FunnelTarget::dim);
  }
};

}  // namespace pyvi
