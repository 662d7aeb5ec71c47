// The banana ops' config: the five scalars of their schemas, checked, as the density's constants
// (BananaParams). Shared by banana_log_joint (banana.cpp) and banana_leapfrog (banana_leapfrog.cpp).
#pragma once

#include <c10/util/Exception.h>

#include <cmath>
#include <string>

#include "../common/banana.h"

namespace pyvi {

/// The config struct's one builder: the schema's five scalars, checked, as the density's constants.
inline BananaParams<double> banana_config(double num_data, double mean_y, double ss_y, double sigma_y,
                                          double sigma_theta) {
  const std::string error = banana_params_error(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  TORCH_CHECK_VALUE(error.empty(), error);
  return banana_params(num_data, mean_y, ss_y, sigma_y, sigma_theta);
}

/// float32 has a narrower range than the parameters': every constant must stay a normal float (`op`
/// names the op in the message).
inline void check_float_range(const BananaParams<double>& params, const char* op) {
  const BananaParams<float> p = banana_cast<float>(params);
  const float n_lik = p.num_data * p.lik_precision;
  const bool normal = std::isnormal(p.num_data) && std::isnormal(p.lik_precision) &&
                      std::isnormal(p.prior_precision) && std::isnormal(n_lik) && std::isfinite(p.mean_y) &&
                      std::isfinite(p.log_norm);
  TORCH_CHECK_VALUE(normal, op, ": the banana's constants (1/sigma_y^2 = ", params.lik_precision,
                    ", 1/sigma_theta^2 = ", params.prior_precision, ", log normaliser ", params.log_norm,
                    ") leave float32's range; use float64 theta");
}

}  // namespace pyvi
