// Per-sample math of a stack of coupling layers, NICE (additive, Dinh et al. 2014,
// arXiv:1410.8516) or RealNVP (affine, Dinh et al. 2016, arXiv:1605.08803), shared by the CPU and
// CUDA kernels of pyvi::coupling_forward / pyvi::coupling_backward.
//
// Layout of the packed parameter vector, defined here once (coupling_halves, coupling_layer_shape,
// coupling_layer_offset, coupling_offset, coupling_num_params): the kernels walk it, and
// pyvi._C.coupling_layout exports it to Python (pyvi/flows/coupling.py's CouplingLayout reads it).
// Coupling k conditions on `cond` coordinates and moves `moved` ones (halves alternating: even k
// conditions on [0, D/2), odd k on [D/2, D)); its ReLU MLP stores
//   W_0 (H, cond), b_0 (H), [W_l (H, H), b_l (H)] x (depth - 1), W_out (num_out, H), b_out (num_out)
// row-major, num_out = moved (additive) or 2 moved (affine: raw scale first, then shift).
// NICE appends D log-scales. The forward stores each coupling's input (and, last, the input of
// NICE's scaling) as `states` (C + 1, D); the backward recomputes one MLP at a time from them.
#pragma once

#include <cstdint>

#include "flow_math.h"
#include "macros.h"

namespace pyvi {

/// Largest sizes the per-sample scratch arrays take (exported to Python as pyvi._C.coupling_max_*).
constexpr int kCouplingMaxHidden = 64;
constexpr int kCouplingMaxDepth = 8;
constexpr int kCouplingMaxDim = 16;
/// Largest number of couplings the ops accept (a sanity bound: no scratch depends on it).
constexpr int kCouplingMaxCouplings = 1024;

struct CouplingShape {
  int dim;
  int num_couplings;
  int hidden;
  int depth;
  bool affine;
};

/// (cond_start, cond_size, moved_start, moved_size) of coupling k.
PYVI_HOST_DEVICE void coupling_halves(const CouplingShape& s, int k, int* cond_start, int* cond_size,
                                      int* moved_start, int* moved_size) {
  const int split = s.dim / 2;
  if (k % 2 == 0) {
    *cond_start = 0, *cond_size = split, *moved_start = split, *moved_size = s.dim - split;
  } else {
    *cond_start = split, *cond_size = s.dim - split, *moved_start = 0, *moved_size = split;
  }
}

/// (rows, cols) of W_l, layer l in [0, depth] of coupling k's MLP: (H, cond), (H, H) ..., (num_out, H).
PYVI_HOST_DEVICE void coupling_layer_shape(const CouplingShape& s, int k, int l, int* rows, int* cols) {
  int cs, cn, ms, mn;
  coupling_halves(s, k, &cs, &cn, &ms, &mn);
  *rows = l == s.depth ? mn * (s.affine ? 2 : 1) : s.hidden;
  *cols = l == 0 ? cn : s.hidden;
}

/// Offset of W_l within coupling k's block (b_l follows W_l); l = depth + 1 gives the block's size.
PYVI_HOST_DEVICE int64_t coupling_layer_offset(const CouplingShape& s, int k, int l) {
  int64_t at = 0;
  for (int j = 0; j < l; ++j) {
    int rows, cols;
    coupling_layer_shape(s, k, j, &rows, &cols);
    at += int64_t(rows) * cols + rows;
  }
  return at;
}

/// Number of parameters of coupling k's MLP.
PYVI_HOST_DEVICE int64_t coupling_mlp_size(const CouplingShape& s, int k) {
  return coupling_layer_offset(s, k, s.depth + 1);
}

/// Offset of coupling k's block in the packed vector; k = num_couplings gives NICE's log-scales.
PYVI_HOST_DEVICE int64_t coupling_offset(const CouplingShape& s, int k) {
  int64_t total = 0;
  for (int j = 0; j < k; ++j) total += coupling_mlp_size(s, j);
  return total;
}

/// Total packed size: every MLP, plus NICE's D log-scales.
PYVI_HOST_DEVICE int64_t coupling_num_params(const CouplingShape& s) {
  return coupling_offset(s, s.num_couplings) + (s.affine ? 0 : s.dim);
}

/// MLP forward: post-ReLU activations (depth x H) to acts, outputs (num_out) to out.
template <typename T>
PYVI_HOST_DEVICE void coupling_mlp_forward(const T* w, int din, int hidden, int depth, int num_out, const T* input,
                                           T* acts, T* out) {
  const T* bias = w + hidden * din;
  for (int h = 0; h < hidden; ++h) {
    T sum = bias[h];
    for (int j = 0; j < din; ++j) sum += w[h * din + j] * input[j];
    acts[h] = sum > T(0) ? sum : T(0);
  }
  const T* layer = w + hidden * din + hidden;
  for (int l = 1; l < depth; ++l) {
    const T* prev = acts + (l - 1) * hidden;
    T* cur = acts + l * hidden;
    const T* b = layer + hidden * hidden;
    for (int h = 0; h < hidden; ++h) {
      T sum = b[h];
      for (int j = 0; j < hidden; ++j) sum += layer[h * hidden + j] * prev[j];
      cur[h] = sum > T(0) ? sum : T(0);
    }
    layer += hidden * hidden + hidden;
  }
  const T* last = acts + (depth - 1) * hidden;
  const T* b_out = layer + num_out * hidden;
  for (int o = 0; o < num_out; ++o) {
    T sum = b_out[o];
    for (int h = 0; h < hidden; ++h) sum += layer[o * hidden + h] * last[h];
    out[o] = sum;
  }
}

/// MLP backward for one sample: adds dL/dinput to g_input (din) and sends every parameter's
/// gradient through accumulate(offset + index, value), for every parameter (zeros included).
template <typename T, typename Accumulate>
PYVI_HOST_DEVICE void coupling_mlp_backward(const T* w, int64_t offset, int din, int hidden, int depth, int num_out,
                                            const T* input, const T* acts, const T* g_out, T* g_input,
                                            Accumulate& accumulate) {
  T g_h[kCouplingMaxHidden];
  T g_prev[kCouplingMaxHidden];
  const int64_t first = int64_t(hidden) * din + hidden;
  const int64_t per_layer = int64_t(hidden) * hidden + hidden;
  const int64_t out_at = first + (depth - 1) * per_layer;
  const T* w_out = w + out_at;
  const T* last = acts + (depth - 1) * hidden;
  for (int h = 0; h < hidden; ++h) g_h[h] = T(0);
  for (int o = 0; o < num_out; ++o) {
    const T go = g_out[o];
    for (int h = 0; h < hidden; ++h) {
      accumulate(offset + out_at + o * hidden + h, go * last[h]);
      g_h[h] += w_out[o * hidden + h] * go;
    }
    accumulate(offset + out_at + int64_t(num_out) * hidden + o, go);
  }
  for (int l = depth - 1; l >= 1; --l) {
    const int64_t at = first + (l - 1) * per_layer;
    const T* layer = w + at;
    const T* cur = acts + l * hidden;
    const T* prev = acts + (l - 1) * hidden;
    for (int j = 0; j < hidden; ++j) g_prev[j] = T(0);
    for (int h = 0; h < hidden; ++h) {
      const T gp = cur[h] > T(0) ? g_h[h] : T(0);  // ReLU'
      for (int j = 0; j < hidden; ++j) {
        accumulate(offset + at + h * hidden + j, gp * prev[j]);
        g_prev[j] += layer[h * hidden + j] * gp;
      }
      accumulate(offset + at + int64_t(hidden) * hidden + h, gp);
    }
    for (int j = 0; j < hidden; ++j) g_h[j] = g_prev[j];
  }
  for (int h = 0; h < hidden; ++h) {
    const T gp = acts[h] > T(0) ? g_h[h] : T(0);
    for (int j = 0; j < din; ++j) {
      accumulate(offset + h * din + j, gp * input[j]);
      g_input[j] += w[h * din + j] * gp;
    }
    accumulate(offset + int64_t(hidden) * din + h, gp);
  }
}

/// Forward pass of one sample: x (D) from z (D), states (C + 1, D); returns log|det|.
template <typename T>
PYVI_HOST_DEVICE T coupling_forward_sample(const T* params, const CouplingShape& s, T scale_bound, const T* z, T* x,
                                           T* states) {
  T acts[kCouplingMaxDepth * kCouplingMaxHidden];
  T out[2 * kCouplingMaxDim];
  for (int d = 0; d < s.dim; ++d) x[d] = z[d];
  T log_det = 0;
  int64_t offset = 0;
  for (int k = 0; k < s.num_couplings; ++k) {
    for (int d = 0; d < s.dim; ++d) states[k * s.dim + d] = x[d];
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    coupling_mlp_forward(params + offset, cn, s.hidden, s.depth, mn * (s.affine ? 2 : 1), x + cs, acts, out);
    if (s.affine) {
      for (int j = 0; j < mn; ++j) {
        T th, sech2;
        flow_math::tanh_and_sech2(out[j] / scale_bound, &th, &sech2);
        const T scale = scale_bound * th;
        x[ms + j] = x[ms + j] * flow_math::exp(scale) + out[mn + j];
        log_det += scale;
      }
    } else {
      for (int j = 0; j < mn; ++j) x[ms + j] += out[j];
    }
    offset += coupling_mlp_size(s, k);
  }
  for (int d = 0; d < s.dim; ++d) states[s.num_couplings * s.dim + d] = x[d];
  if (!s.affine) {
    const T* log_scale = params + offset;
    for (int d = 0; d < s.dim; ++d) {
      x[d] *= flow_math::exp(log_scale[d]);
      log_det += log_scale[d];
    }
  }
  return log_det;
}

/// Backward pass of one sample: g (D) holds dL/dx on entry and dL/dz on exit; parameter gradients
/// go through accumulate(index, value) (every index, every sample, in the same order).
template <typename T, typename Accumulate>
PYVI_HOST_DEVICE void coupling_backward_sample(const T* params, const CouplingShape& s, T scale_bound, const T* states,
                                               T grad_log_det, T* g, Accumulate& accumulate) {
  T acts[kCouplingMaxDepth * kCouplingMaxHidden];
  T out[2 * kCouplingMaxDim];
  T g_out[2 * kCouplingMaxDim];
  T g_cond[kCouplingMaxDim];
  int64_t offset = coupling_num_params(s) - (s.affine ? 0 : s.dim);
  if (!s.affine) {
    const T* log_scale = params + offset;
    const T* before = states + s.num_couplings * s.dim;
    for (int d = 0; d < s.dim; ++d) {
      const T e = flow_math::exp(log_scale[d]);
      accumulate(offset + d, g[d] * before[d] * e + grad_log_det);
      g[d] *= e;
    }
  }
  for (int k = s.num_couplings - 1; k >= 0; --k) {
    offset -= coupling_mlp_size(s, k);
    const T* input = states + k * s.dim;
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    const int num_out = mn * (s.affine ? 2 : 1);
    coupling_mlp_forward(params + offset, cn, s.hidden, s.depth, num_out, input + cs, acts, out);
    if (s.affine) {
      for (int j = 0; j < mn; ++j) {
        T th, sech2;
        flow_math::tanh_and_sech2(out[j] / scale_bound, &th, &sech2);
        const T e = flow_math::exp(scale_bound * th);
        const T g_moved = g[ms + j];
        // y = x e^s + t:  dy/ds = x e^s, and log|det| gains s;  s = bound tanh(raw / bound).
        g_out[j] = (g_moved * input[ms + j] * e + grad_log_det) * sech2;
        g_out[mn + j] = g_moved;
        g[ms + j] = g_moved * e;
      }
    } else {
      for (int j = 0; j < mn; ++j) g_out[j] = g[ms + j];
    }
    for (int j = 0; j < cn; ++j) g_cond[j] = T(0);
    coupling_mlp_backward(params + offset, offset, cn, s.hidden, s.depth, num_out, input + cs, acts, g_out, g_cond,
                          accumulate);
    for (int j = 0; j < cn; ++j) g[cs + j] += g_cond[j];
  }
}

}  // namespace pyvi
