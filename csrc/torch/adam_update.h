// pyvi::adam_update_: one Adam step of a packed parameter tensor that needs no host synchronisation:
// the learning rate comes from a schedule tensor at the step index held on the device, a step whose
// bound or gradient is not finite leaves everything unchanged (and is recorded as NaN in the history),
// and the index advances in place. vi.fit's training step on the GPU ends with it, inside a CUDA graph.
#pragma once

#include <ATen/core/Tensor.h>

namespace pyvi {

struct AdamConfig {
  double beta1, beta2, eps;
};

/// Kernels: tensors validated by adam_update.cpp (param, grad, exp_avg, exp_avg_sq contiguous, one dtype;
/// step float64 (), lr float64 (num_steps,), index int64 (), bound (), history float64 (num_steps,)).
void adam_update_cpu(const AdamConfig& config, at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                     at::Tensor& exp_avg_sq, at::Tensor& step, const at::Tensor& lr, at::Tensor& index,
                     const at::Tensor& bound, at::Tensor& history);
void adam_update_cuda(const AdamConfig& config, at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg,
                      at::Tensor& exp_avg_sq, at::Tensor& step, const at::Tensor& lr, at::Tensor& index,
                      const at::Tensor& bound, at::Tensor& history);

}  // namespace pyvi
