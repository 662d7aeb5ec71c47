// Per-sample math of a planar flow stack (Rezende & Mohamed 2015, arXiv:1505.05770), shared by the
// CPU and CUDA kernels of pyvi::planar_forward / pyvi::planar_backward.
//
// Packed parameters: row k of a (K, 2D+1) tensor is [u (D), w (D), b].
// Layer k: u_hat = u + c w with c = (softplus(w.u) - 1 - w.u) / max(|w|^2, tiny), so w.u_hat > -1;
//   x = z + u_hat h,  h = tanh(w.z + b),  log|det| = log(h^2 + (1 - h^2) softplus(w.u)).
// That form of 1 + (1 - h^2) w.u_hat is a sum of non-negative terms: no cancellation, never log < 0.
// Speed: h and 1 - h^2 come from one exp, and the K determinants are multiplied and logged once
// (LogOfProduct, folding before over/underflow): transcendentals were most of the kernel's time.
//
// "Prepared" layer constants, computed once per call (not per sample), are [u_hat, w, b, softplus]
// (2D+2 numbers). The backward pass accumulates, per layer, the 2D+2 sums over samples
//   [sum g_uhat (D), sum g_a z (D), sum g_a, sum g_softplus]
// and planar_param_grad() chains them through u_hat(u, w) once per layer at the end: the
// per-sample work never touches the reparameterisation.
#pragma once

#include "flow_math.h"
#include "macros.h"

namespace pyvi {

/// Largest dim of the CUDA backward (its per-thread gradient vector lives in registers/local memory).
constexpr int kPlanarMaxCudaDim = 64;

/// Numbers per prepared layer and per accumulator layer.
PYVI_HOST_DEVICE int planar_prep_size(int dim) { return 2 * dim + 2; }

/// Smallest normal number of T: the floor of |w|^2 (same as the reference's clamp_min).
template <typename T>
PYVI_HOST_DEVICE T planar_tiny();
template <>
PYVI_HOST_DEVICE float planar_tiny<float>() { return 1.17549435e-38f; }
template <>
PYVI_HOST_DEVICE double planar_tiny<double>() { return 2.2250738585072014e-308; }

/// Writes [u_hat, w, b, softplus(w.u)] of one packed row [u, w, b].
template <typename T>
PYVI_HOST_DEVICE void planar_prepare(const T* row, int dim, T* prep) {
  const T* u = row;
  const T* w = row + dim;
  T wu = 0, norm2 = 0;
  for (int d = 0; d < dim; ++d) {
    wu += w[d] * u[d];
    norm2 += w[d] * w[d];
  }
  const T softplus = flow_math::softplus(wu);
  const T tiny = planar_tiny<T>();
  const T c = (softplus - T(1) - wu) / (norm2 > tiny ? norm2 : tiny);
  for (int d = 0; d < dim; ++d) {
    prep[d] = u[d] + c * w[d];
    prep[dim + d] = w[d];
  }
  prep[2 * dim] = row[2 * dim];
  prep[2 * dim + 1] = softplus;
}

/// One layer forward for one sample: x (D) moves in place, its input goes to state (D); returns
/// this layer's |det| (its log is taken once per sample, see LogOfProduct).
template <typename T>
PYVI_HOST_DEVICE T planar_layer_forward(const T* p, int dim, T* x, T* state) {
  T a = p[2 * dim];
  for (int d = 0; d < dim; ++d) {
    state[d] = x[d];
    a += p[dim + d] * x[d];
  }
  T h, sech2;
  flow_math::tanh_and_sech2(a, &h, &sech2);
  for (int d = 0; d < dim; ++d) x[d] += p[d] * h;
  return h * h + sech2 * p[2 * dim + 1];
}

/// Forward pass of one sample through all K layers: x (D) from z (D); the input of every layer
/// goes to states (K x D). Returns the summed log|det|. x may alias z.
template <typename T>
PYVI_HOST_DEVICE T planar_forward_sample(const T* prep, int num_layers, int dim, const T* z, T* x,
                                         T* states) {
  const int stride = planar_prep_size(dim);
  for (int d = 0; d < dim; ++d) x[d] = z[d];
  flow_math::LogOfProduct<T> log_det;
  for (int k = 0; k < num_layers; ++k)
    log_det.multiply(planar_layer_forward(prep + k * stride, dim, x, states + k * dim));
  return log_det.value();
}

/// One layer backward for one sample (layer k, prepared constants p, its input z): g (D) holds
/// dL/d(output) on entry and dL/d(input) on exit; the layer's sums go to accumulate(base + j, .).
template <typename T, typename Accumulate>
PYVI_HOST_DEVICE void planar_layer_backward(const T* p, int dim, const T* z, T grad_log_det, T* g, int base,
                                            Accumulate& accumulate) {
  const T softplus = p[2 * dim + 1];
  T a = p[2 * dim];
  T g_dot_uhat = 0;
  for (int d = 0; d < dim; ++d) {
    a += p[dim + d] * z[d];
    g_dot_uhat += g[d] * p[d];
  }
  T h, one_minus_h2;
  flow_math::tanh_and_sech2(a, &h, &one_minus_h2);
  const T inverse_det = T(1) / (h * h + one_minus_h2 * softplus);
  // d log det / dh = 2 h (1 - softplus) / det;  d log det / d softplus = (1 - h^2) / det.
  const T g_h = g_dot_uhat + grad_log_det * T(2) * h * (T(1) - softplus) * inverse_det;
  const T g_a = g_h * one_minus_h2;
  for (int d = 0; d < dim; ++d) {
    accumulate(base + d, g[d] * h);          // dL/du_hat
    accumulate(base + dim + d, g_a * z[d]);  // dL/dw through a = w.z + b
  }
  accumulate(base + 2 * dim, g_a);                                         // dL/db
  accumulate(base + 2 * dim + 1, grad_log_det * one_minus_h2 * inverse_det);  // dL/dsoftplus
  for (int d = 0; d < dim; ++d) g[d] += g_a * p[dim + d];
}

/// Backward pass of one sample. On entry g (D) holds dL/dx; on exit dL/dz. grad_log_det is dL/d
/// log|det|. Per-layer sums go through accumulate(index, value), index into the (K, 2D+2)
/// accumulator layout described above. Every call is made for every sample (zero values included)
/// so that CUDA warps can reduce them in lock step.
template <typename T, typename Accumulate>
PYVI_HOST_DEVICE void planar_backward_sample(const T* prep, int num_layers, int dim, const T* states,
                                             T grad_log_det, T* g, Accumulate& accumulate) {
  const int stride = planar_prep_size(dim);
  for (int k = num_layers - 1; k >= 0; --k)
    planar_layer_backward(prep + k * stride, dim, states + k * dim, grad_log_det, g, k * stride, accumulate);
}

/// Chains one layer's accumulated sums through u_hat(u, w) and softplus(w.u) into dL/d[u, w, b].
template <typename T>
PYVI_HOST_DEVICE void planar_param_grad(const T* row, int dim, const T* sums, T* grad_row) {
  const T* u = row;
  const T* w = row + dim;
  T wu = 0, norm2 = 0, g_c = 0;
  for (int d = 0; d < dim; ++d) {
    wu += w[d] * u[d];
    norm2 += w[d] * w[d];
    g_c += sums[d] * w[d];  // c enters u_hat = u + c w
  }
  const T softplus = flow_math::softplus(wu);
  const T tiny = planar_tiny<T>();
  const bool clamped = !(norm2 > tiny);
  const T n2 = clamped ? tiny : norm2;
  const T c = (softplus - T(1) - wu) / n2;
  // c = (softplus - 1 - wu) / n2:  dc/dsoftplus = 1/n2, dc/dwu = -1/n2, dc/dn2 = -c/n2.
  const T g_softplus = sums[2 * dim + 1] + g_c / n2;
  const T g_wu = g_softplus * flow_math::sigmoid(wu) - g_c / n2;
  const T g_n2 = clamped ? T(0) : -g_c * c / n2;
  for (int d = 0; d < dim; ++d) {
    grad_row[d] = sums[d] + g_wu * w[d];
    grad_row[dim + d] = sums[dim + d] + c * sums[d] + g_wu * u[d] + T(2) * g_n2 * w[d];
  }
  grad_row[2 * dim] = sums[2 * dim];
}

}  // namespace pyvi
