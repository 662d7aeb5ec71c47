// pyvi::bound_gradients: the ELBO / IWAE bound of a flow's reparameterised samples and the gradients of
// -bound that the flow's backward op takes (math in ../common/variational_bound.h). One op, one kernel
// launch, no host synchronisation: the step vi.fit runs (and captures in a CUDA graph on the GPU).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace pyvi {

struct BoundConfig {
  int64_t num_samples;    // N = batch * num_particles
  int64_t num_particles;  // K (1 for the ELBO)
  int64_t dim;
  double log_normaliser;
  bool iwae;
};

/// Kernels: fill bound (0-dim), grad_x (N, dim), grad_log_det (N,) from contiguous inputs.
void bound_gradients_cpu(const BoundConfig& config, const at::Tensor& log_p, const at::Tensor& grad_log_p,
                         const at::Tensor& log_det, const at::Tensor& noise, at::Tensor& bound, at::Tensor& grad_x,
                         at::Tensor& grad_log_det);
void bound_gradients_cuda(const BoundConfig& config, const at::Tensor& log_p, const at::Tensor& grad_log_p,
                          const at::Tensor& log_det, const at::Tensor& noise, at::Tensor& bound, at::Tensor& grad_x,
                          at::Tensor& grad_log_det);

}  // namespace pyvi
