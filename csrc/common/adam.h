// Per-element Adam update shared by the CPU and CUDA kernels of pyvi::adam_update_, with the
// operations of torch.optim.Adam's single-tensor path (torch/optim/adam.py, _single_tensor_adam) in
// its order. torch's CPU kernels fuse some multiply-adds in their vectorised loops and not in their
// scalar tails, so its results depend on the CPU and on an element's position: this update agrees
// with it to the last bits, not bit for bit (tested to 1e-13 relative over many steps).
//   m <- lerp(m, g, 1 - beta1);  v <- v beta2 + (1 - beta2) g^2;
//   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
//
// References:
//   D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (arXiv:1412.6980).
#pragma once

#include <cmath>

#include "macros.h"

namespace pyvi {

/// The step's scalars, computed once in double as torch computes them in Python floats.
struct AdamScalars {
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  double one_minus_beta1, beta2, one_minus_beta2, eps;
};

PYVI_HOST_DEVICE AdamScalars adam_scalars(double lr, double beta1, double beta2, double eps, double step) {
  // pow(x, 0.5), not sqrt: Python's `bias_correction2 ** 0.5` is C's pow.
  return {lr / (1.0 - pow(beta1, step)), pow(1.0 - pow(beta2, step), 0.5), 1.0 - beta1, beta2, 1.0 - beta2, eps};
}

template <typename T>
PYVI_HOST_DEVICE void adam_element(const AdamScalars& s, T grad, T* param, T* exp_avg, T* exp_avg_sq) {
  const T weight = static_cast<T>(s.one_minus_beta1);
  // torch.lerp with weight < 0.5: self + weight * (end - self).
  const T m = *exp_avg + weight * (grad - *exp_avg);
  const T v = *exp_avg_sq * static_cast<T>(s.beta2) + static_cast<T>(s.one_minus_beta2) * grad * grad;
  const T denom = sqrt(v) / static_cast<T>(s.bias_correction2_sqrt) + static_cast<T>(s.eps);
  *exp_avg = m;
  *exp_avg_sq = v;
  // addcdiv_(m, denom, value) computes self + value * m / denom, left to right.
  *param = *param + static_cast<T>(-s.step_size) * m / denom;
}

}  // namespace pyvi
