// Per-element math of pyvi::sparse_linear (csrc/torch/sparse_linear.cpp), shared by its CPU and
// CUDA kernels: y = act(x W^T + b) for an input x whose rows are mostly zeros, computed as a sum over
// the nonzero inputs only.
//
// The VAE's encoder reads dynamically binarised MNIST digits: about 15-20% of the 784 pixels are
// ones, the rest exact zeros. A dense GEMM multiplies all of them; skipping the zeros computes the
// same sums (up to float rounding) with a sixth of the multiply-adds, in the forward pass and in the
// weight gradient W.grad = dY^T x, whose nonzero terms are again those of x.
//
// References:
//   Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114 (the MLP encoder).
//   Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks", ICML 2008
//   (dynamic binarisation of MNIST).
#pragma once

#include <cstdint>

#include "macros.h"

namespace pyvi {

/// The layer's activation: ReLU when `relu`, the identity otherwise (NaN stays NaN, as in torch).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t sparse_linear_activation(scalar_t pre, bool relu) {
  return relu && pre < scalar_t(0) ? scalar_t(0) : pre;
}

/// Gradient with respect to the pre-activation, from the output's gradient and the output itself
/// (torch's threshold_backward: ReLU passes the gradient where the output is positive).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t sparse_linear_activation_grad(scalar_t grad, scalar_t out, bool relu) {
  return relu && !(out > scalar_t(0)) ? scalar_t(0) : grad;
}

/// init + sum_k a[k * a_stride] * b[k * b_stride] over the k with a nonzero a: one output of
/// x W^T (a = a row of x, b = a column of W^T) or of the weight gradient dY^T x (a = a column of x,
/// b = a column of dY). Zeros of `a` cost a compare, not a load of `b`.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t sparse_dot(const scalar_t* a, int64_t a_stride, const scalar_t* b, int64_t b_stride,
                                     int64_t n, scalar_t init) {
  scalar_t acc = init;
  for (int64_t k = 0; k < n; ++k) {
    const scalar_t value = a[k * a_stride];
    if (value != scalar_t(0)) acc += value * b[k * b_stride];
  }
  return acc;
}

}  // namespace pyvi
