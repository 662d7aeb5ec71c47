// CPU kernel of pyvi::banana_log_joint: the shared per-sample math over samples, in parallel.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>

#include <torch/library.h>

#include "../common/banana.h"
#include "banana.h"
#include "no_cuda.h"

namespace pyvi {

void check_banana_args(const at::Tensor& theta, double num_data, double ss_y, double sigma_y,
                       double sigma_theta) {
  TORCH_CHECK_VALUE(theta.dim() == 2 && theta.size(1) == 2,
                    "theta must have shape (batch, 2), got ", theta.sizes());
  TORCH_CHECK_TYPE(theta.scalar_type() == at::kFloat || theta.scalar_type() == at::kDouble,
                   "theta must be float32 or float64, got ", theta.scalar_type());
  TORCH_CHECK_VALUE(num_data >= 1 && std::isfinite(num_data), "num_data must be >= 1");
  TORCH_CHECK_VALUE(ss_y >= 0 && std::isfinite(ss_y), "ss_y must be finite and >= 0");
  TORCH_CHECK_VALUE(sigma_y > 0 && std::isfinite(sigma_y), "sigma_y must be finite and > 0");
  TORCH_CHECK_VALUE(sigma_theta > 0 && std::isfinite(sigma_theta),
                    "sigma_theta must be finite and > 0");
}

std::tuple<at::Tensor, at::Tensor> banana_log_joint_cpu(const at::Tensor& theta_in, double num_data,
                                                        double mean_y, double ss_y, double sigma_y,
                                                        double sigma_theta) {
  check_banana_args(theta_in, num_data, ss_y, sigma_y, sigma_theta);
  TORCH_CHECK(theta_in.device().is_cpu(), "banana_log_joint_cpu: theta must be a CPU tensor");
  const at::Tensor theta = theta_in.contiguous();
  const int64_t batch = theta.size(0);
  at::Tensor log_prob = at::empty({batch}, theta.options());
  at::Tensor grad = at::empty({batch, 2}, theta.options());
  const auto params = banana_params(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "banana_log_joint_cpu", [&] {
    const auto p = banana_cast<scalar_t>(params);
    const scalar_t* t = theta.const_data_ptr<scalar_t>();
    scalar_t* lp = log_prob.mutable_data_ptr<scalar_t>();
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        lp[i] = banana_log_joint(p, t[2 * i], t[2 * i + 1], g + 2 * i);
    });
  });
  return {log_prob, grad};
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("banana_log_joint(Tensor theta, float num_data, float mean_y, float ss_y, float sigma_y, "
        "float sigma_theta) -> (Tensor log_prob, Tensor grad)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("banana_log_joint", &pyvi::banana_log_joint_cpu); }

PYVI_NO_CUDA_FALLBACK("banana_log_joint")
