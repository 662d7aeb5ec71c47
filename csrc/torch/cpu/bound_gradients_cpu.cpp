// CPU kernel of pyvi::bound_gradients: the shared math of ../../common/variational_bound.h, one
// sequential pass (the op is a reduction over a few hundred to a few hundred thousand samples;
// its fixed order keeps the bound bit-identical whatever the thread count).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../../common/variational_bound.h"
#include "../bound_gradients.h"

namespace pyvi {

void bound_gradients_cpu(const BoundConfig& c, const at::Tensor& log_p, const at::Tensor& grad_log_p,
                         const at::Tensor& log_det, const at::Tensor& noise, at::Tensor& bound, at::Tensor& grad_x,
                         at::Tensor& grad_log_det) {
  AT_DISPATCH_FLOATING_TYPES(log_p.scalar_type(), "bound_gradients_cpu", [&] {
    const scalar_t* lp = log_p.const_data_ptr<scalar_t>();
    const scalar_t* g = grad_log_p.const_data_ptr<scalar_t>();
    const scalar_t* ld = log_det.const_data_ptr<scalar_t>();
    const scalar_t* z = noise.const_data_ptr<scalar_t>();
    scalar_t* gx = grad_x.mutable_data_ptr<scalar_t>();
    scalar_t* gl = grad_log_det.mutable_data_ptr<scalar_t>();
    double total = 0.0;
    if (!c.iwae) {
      const double coefficient = -1.0 / static_cast<double>(c.num_samples);
      for (int64_t i = 0; i < c.num_samples; ++i) {
        total += log_weight(lp, ld, z, i, c.dim, c.log_normaliser);
        write_sample_gradients(g, i, c.dim, coefficient, gx, gl);
      }
      total /= static_cast<double>(c.num_samples);
    } else {
      const int64_t batch = c.num_samples / c.num_particles;
      const double log_k = std::log(static_cast<double>(c.num_particles));
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t first = b * c.num_particles;
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < c.num_particles; ++k)
          top = std::max(top, log_weight(lp, ld, z, first + k, c.dim, c.log_normaliser));
        double sum = 0.0;
        for (int64_t k = 0; k < c.num_particles; ++k)
          sum += std::exp(log_weight(lp, ld, z, first + k, c.dim, c.log_normaliser) - top);
        const double log_sum = top + std::log(sum);
        total += log_sum - log_k;
        for (int64_t k = 0; k < c.num_particles; ++k) {
          const double w = std::exp(log_weight(lp, ld, z, first + k, c.dim, c.log_normaliser) - log_sum);
          write_sample_gradients(g, first + k, c.dim, -w / static_cast<double>(batch), gx, gl);
        }
      }
      total /= static_cast<double>(batch);
    }
    *bound.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(total);
  });
}

}  // namespace pyvi
