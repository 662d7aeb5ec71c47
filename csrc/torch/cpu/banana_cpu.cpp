// CPU kernel of pyvi::banana_log_joint: the shared per-sample math over samples, in parallel.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include "../banana.h"

namespace pyvi {

void banana_log_joint_cpu(const BananaParams<double>& params, const at::Tensor& theta, at::Tensor& log_prob,
                          at::Tensor& grad) {
  const int64_t batch = theta.size(0);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "banana_log_joint_cpu", [&] {
    const auto p = banana_cast<scalar_t>(params);
    const scalar_t* t = theta.const_data_ptr<scalar_t>();
    scalar_t* lp = log_prob.mutable_data_ptr<scalar_t>();
    scalar_t* g = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        lp[i] = banana_log_joint(p, t[2 * i], t[2 * i + 1], g + 2 * i);
        banana_repair_gradient(p, t[2 * i], t[2 * i + 1], g + 2 * i);
      }
    });
  });
}

}  // namespace pyvi
