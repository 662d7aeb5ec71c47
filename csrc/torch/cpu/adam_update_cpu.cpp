// CPU kernel of pyvi::adam_update_ (the reference of the CUDA kernel; math in ../../common/adam.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <cmath>
#include <limits>

#include "../../common/adam.h"
#include "../adam_update.h"

namespace pyvi {

void adam_update_cpu(const AdamConfig& c, at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                     at::Tensor& exp_avg_sq, at::Tensor& step, const at::Tensor& lr, at::Tensor& index,
                     const at::Tensor& bound, at::Tensor& history) {
  int64_t* at_index = index.mutable_data_ptr<int64_t>();
  const int64_t i = *at_index;
  if (i < 0 || i >= lr.size(0)) return;  // past the schedule: nothing to do (the host never asks)
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adam_update_cpu", [&] {
    const int64_t n = param.numel();
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t b = *bound.const_data_ptr<scalar_t>();
    bool finite = std::isfinite(static_cast<double>(b));
    for (int64_t j = 0; j < n && finite; ++j) finite = std::isfinite(static_cast<double>(g[j]));
    double* h = history.mutable_data_ptr<double>();
    if (finite) {
      double* t = step.mutable_data_ptr<double>();
      *t += 1.0;
      const AdamScalars s = adam_scalars(lr.const_data_ptr<double>()[i], c.beta1, c.beta2, c.eps, *t);
      scalar_t* p = param.mutable_data_ptr<scalar_t>();
      scalar_t* m = exp_avg.mutable_data_ptr<scalar_t>();
      scalar_t* v = exp_avg_sq.mutable_data_ptr<scalar_t>();
      for (int64_t j = 0; j < n; ++j) adam_element(s, g[j], p + j, m + j, v + j);
      h[i] = static_cast<double>(b);
    } else {
      h[i] = std::numeric_limits<double>::quiet_NaN();
    }
  });
  *at_index = i + 1;
}

}  // namespace pyvi
