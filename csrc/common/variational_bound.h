// Per-sample math of pyvi::bound_gradients, shared by its CPU and CUDA kernels: the Monte Carlo
// ELBO / IWAE bound of a reparameterised flow and the gradients of -bound with respect to each
// sample's log weight, from which the flow's backward op takes dL/dx and dL/dlog|det|.
//
// With z = loc + scale * noise and x = f(z), the log weight of a sample is
//   log w = log p(y, x) - log q(x) = log p(y, x) + log|det df/dz| + |noise|^2 / 2 + log_normaliser,
// log_normaliser = sum log scale + dim/2 log(2 pi). ELBO: bound = mean log w, d(-bound)/dlog w = -1/N.
// IWAE (K particles per batch element b): bound = mean_b [logsumexp_k log w_bk - log K],
// d(-bound)/dlog w_bk = -softmax_k(log w_b.)_k / B.
//
// References:
//   Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016
//   (arXiv:1509.00519).
#pragma once

#include <cstdint>

#include "macros.h"

namespace pyvi {

/// log w of sample i: log p + log|det| + |noise_i|^2 / 2 + log_normaliser, accumulated in double.
template <typename T>
PYVI_HOST_DEVICE double log_weight(const T* log_p, const T* log_det, const T* noise, int64_t i, int64_t dim,
                                   double log_normaliser) {
  double squares = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    const double v = static_cast<double>(noise[i * dim + d]);
    squares += v * v;
  }
  return static_cast<double>(log_p[i]) + static_cast<double>(log_det[i]) + 0.5 * squares + log_normaliser;
}

/// Writes dL/dlog|det| (= c) and dL/dx (= c grad log p) of sample i, c = d(-bound)/dlog w_i.
template <typename T>
PYVI_HOST_DEVICE void write_sample_gradients(const T* grad_log_p, int64_t i, int64_t dim, double coefficient,
                                             T* grad_x, T* grad_log_det) {
  const T c = static_cast<T>(coefficient);
  grad_log_det[i] = c;
  for (int64_t d = 0; d < dim; ++d) grad_x[i * dim + d] = c * grad_log_p[i * dim + d];
}

}  // namespace pyvi
