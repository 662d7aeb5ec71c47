// The banana posterior of Problem 3 as a native target (see common/banana.h), O(1) per evaluation.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../../common/banana.h"
#include "../validate.hpp"

namespace pyvi {

struct BananaTarget {
  static constexpr int kDim = 2;
  BananaParams<double> params;

  int64_t dim() const { return kDim; }
  double log_prob_and_grad(const double* x, double* grad) const {
    return banana_log_joint(params, x[0], x[1], grad);
  }
  void repair_gradient(const double* x, double* grad) const { banana_repair_gradient(params, x[0], x[1], grad); }

  /// From the sufficient statistics n, mean(y), sum((y - mean(y))^2) and the two sigmas, checked.
  static BananaParams<double> checked_params(double num_data, double mean_y, double ss_y,
                                             double sigma_y, double sigma_theta) {
    const std::string error = banana_params_error(num_data, mean_y, ss_y, sigma_y, sigma_theta);
    if (!error.empty()) fail(error);
    return banana_params(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<BananaTarget>(m, "BananaTarget")
        .def(py::init([](double num_data, double mean_y, double ss_y, double sigma_y, double sigma_theta) {
               return BananaTarget{checked_params(num_data, mean_y, ss_y, sigma_y, sigma_theta)};
             }),
             py::arg("num_data"), py::arg("mean_y"), py::arg("ss_y"), py::arg("sigma_y"),
             py::arg("sigma_theta"),
             "The banana from its sufficient statistics: n, mean(y), sum((y - mean(y))^2).")
        .def_property_readonly("num_data", [](const BananaTarget& t) { return t.params.num_data; })
        .def_property_readonly("mean_y", [](const BananaTarget& t) { return t.params.mean_y; })
        .def_property_readonly("dim", &BananaTarget::dim);
    m.attr("banana_sigma_range") = py::make_tuple(kBananaSigmaMin, kBananaSigmaMax);
    // The derived parameters, for the Numba face: one computation (banana_params) for every backend.
    m.def(
        "banana_params",
        [](double num_data, double mean_y, double ss_y, double sigma_y, double sigma_theta) {
          const BananaParams<double> p = checked_params(num_data, mean_y, ss_y, sigma_y, sigma_theta);
          py::dict out;
          out["num_data"] = p.num_data;
          out["mean_y"] = p.mean_y;
          out["lik_precision"] = p.lik_precision;
          out["prior_precision"] = p.prior_precision;
          out["log_norm"] = p.log_norm;
          return out;
        },
        py::arg("num_data"), py::arg("mean_y"), py::arg("ss_y"), py::arg("sigma_y"), py::arg("sigma_theta"),
        "BananaParams (common/banana.h) as a dict: num_data, mean_y, lik_precision, prior_precision, log_norm.");
  }
};

}  // namespace pyvi
