// CPU per-tile math of the coupling stacks (NICE, Dinh et al. 2014, arXiv:1410.8516; RealNVP,
// Dinh et al. 2016, arXiv:1605.08803): the math of ../../common/coupling.h for kLanes samples at
// once, in a structure-of-arrays layout (row r of a tile array holds one quantity for every
// sample of the tile, samples contiguous). The forward serves every width; the backward the
// narrow conditioners (wide ones: coupling_wide_cpu.h, which reuses mlp_forward).
//
// Why: with widths of a few units, one sample's MLP is a chain of short dependent dot products,
// so the per-sample kernel waits on floating-point latency. Interleaving independent samples in
// the innermost loop hides that latency and lets the compiler vectorise over samples (a weight
// broadcast times kLanes contiguous inputs).
//
// Values: every per-sample quantity (x, log|det|, dL/dz) is summed in the order of
// ../../common/coupling.h (bit-identical to the per-sample kernel when built for the same ISA;
// coupling_cpu.cpp runs these loops in isa.h's x86-64-v3 copy, which contracts multiply-adds).
// Parameter gradients are first summed over the tile's lanes in a fixed tree order, then added tile
// by tile: a fixed order given the batch size, whatever the thread count. The MLPs walk the packed
// layout of ../../common/coupling.h (W_0, b_0, W_1, ... in coupling_layer_offset's order).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "../../common/coupling.h"

namespace pyvi {
namespace coupling_tile {

/// Samples per tile; the fixed lane count of every tile array.
constexpr int kLanes = 32;

template <typename T>
using Row = T[kLanes];

/// Sum of the kLanes entries of v, in a fixed tree order (halves added lane-wise until one is left).
template <typename T>
inline T lane_sum(const T* v) {
  static_assert(kLanes >= 2 && (kLanes & (kLanes - 1)) == 0, "kLanes must be a power of two");
  T part[kLanes / 2];
  for (int s = 0; s < kLanes / 2; ++s) part[s] = v[s] + v[s + kLanes / 2];
  for (int width = kLanes / 4; width >= 1; width /= 2)
    for (int s = 0; s < width; ++s) part[s] += part[s + width];
  return part[0];
}

/// sum over lanes of a[s] * b[s] (fixed order).
template <typename T>
inline T lane_dot(const T* a, const T* b) {
  T product[kLanes];
  for (int s = 0; s < kLanes; ++s) product[s] = a[s] * b[s];
  return lane_sum(product);
}

/// exp(x) in straight-line code that vectorises over lanes (std::exp is a scalar libm call, and
/// RealNVP needs two per sample and coupling): x = n ln2 + r with |r| <= ln2 / 2, e^r by its
/// Taylor polynomial (degree 13 for double, 7 for float: truncation below 1e-17 / 1e-8 relative),
/// 2^n built in the exponent bits. Inputs are clamped to [-708, 709] ([-87, 88] for float): the
/// couplings only take exponentials of bounded scales and of -2|a| <= 0, where the clamp turns
/// results below ~1e-308 (1e-38) into those bounds' values instead of underflowing.
template <typename T>
struct ExpLane;
template <>
struct ExpLane<double> {
  using Bits = uint64_t;
  static constexpr double kLow = -708.0, kHigh = 709.0, kShifter = 0x1.8p52;
  static constexpr double kLog2e = 0x1.71547652b82fep0, kLn2High = 0x1.62e42fee00000p-1,
                          kLn2Low = 0x1.a39ef35793c76p-33;
  static constexpr int kDegree = 13, kMantissaBits = 52;
  static constexpr Bits kBias = 1023;
};
template <>
struct ExpLane<float> {
  using Bits = uint32_t;
  static constexpr float kLow = -87.0f, kHigh = 88.0f, kShifter = 0x1.8p23f;
  static constexpr float kLog2e = 0x1.715476p0f, kLn2High = 0x1.62e4p-1f, kLn2Low = 0x1.7f7d1cp-20f;
  static constexpr int kDegree = 7, kMantissaBits = 23;
  static constexpr Bits kBias = 127;
};

template <typename T>
inline T exp_lane(T x) {
  using C = ExpLane<T>;
  using Bits = typename C::Bits;
  x = x < C::kLow ? C::kLow : (x > C::kHigh ? C::kHigh : x);
  const T shifted = x * C::kLog2e + C::kShifter;  // the nearest integer n sits in the low bits
  const T n = shifted - C::kShifter;
  const T r = (x - n * C::kLn2High) - n * C::kLn2Low;
  T inverse_factorial[C::kDegree + 1];
  inverse_factorial[0] = T(1);
  for (int k = 1; k <= C::kDegree; ++k) inverse_factorial[k] = inverse_factorial[k - 1] / T(k);
  T p = inverse_factorial[C::kDegree];
  for (int k = C::kDegree - 1; k >= 0; --k) p = p * r + inverse_factorial[k];
  const Bits exponent = std::bit_cast<Bits>(shifted) - std::bit_cast<Bits>(C::kShifter) + C::kBias;
  return p * std::bit_cast<T>(exponent << C::kMantissaBits);
}

/// For each lane: scale = bound tanh(raw / bound), its derivative factor sech^2(raw / bound) and
/// e^scale (tanh and sech^2 from one exponential as in flow_math::tanh_and_sech2).
template <typename T>
inline void affine_scale_lanes(const T* raw, T bound, T* scale, T* sech2, T* exp_scale) {
  T e[kLanes];
  for (int s = 0; s < kLanes; ++s) {
    const T a = raw[s] / bound;
    e[s] = exp_lane(T(-2) * (a < T(0) ? -a : a));
  }
  for (int s = 0; s < kLanes; ++s) {
    const T inverse = T(1) / (T(1) + e[s]);
    const T t = (T(1) - e[s]) * inverse;
    scale[s] = bound * (raw[s] < T(0) ? -t : t);
    sech2[s] = T(4) * e[s] * inverse * inverse;
  }
  for (int s = 0; s < kLanes; ++s) exp_scale[s] = exp_lane(scale[s]);
}

/// MLP forward on a tile: input (din rows), post-ReLU activations (depth * hidden rows), outputs
/// (num_out rows). Same summation order per sample as coupling_mlp_forward.
template <typename T>
inline void mlp_forward(const T* w, int din, int hidden, int depth, int num_out, const Row<T>* input, Row<T>* acts,
                        Row<T>* out) {
  const T* bias = w + hidden * din;
  for (int h = 0; h < hidden; ++h) {
    T sum[kLanes];
    for (int s = 0; s < kLanes; ++s) sum[s] = bias[h];
    for (int j = 0; j < din; ++j) {
      const T weight = w[h * din + j];
      for (int s = 0; s < kLanes; ++s) sum[s] += weight * input[j][s];
    }
    for (int s = 0; s < kLanes; ++s) acts[h][s] = sum[s] > T(0) ? sum[s] : T(0);
  }
  const T* layer = w + hidden * din + hidden;
  for (int l = 1; l < depth; ++l) {
    const Row<T>* prev = acts + (l - 1) * hidden;
    Row<T>* cur = acts + l * hidden;
    const T* b = layer + hidden * hidden;
    for (int h = 0; h < hidden; ++h) {
      T sum[kLanes];
      for (int s = 0; s < kLanes; ++s) sum[s] = b[h];
      for (int j = 0; j < hidden; ++j) {
        const T weight = layer[h * hidden + j];
        for (int s = 0; s < kLanes; ++s) sum[s] += weight * prev[j][s];
      }
      for (int s = 0; s < kLanes; ++s) cur[h][s] = sum[s] > T(0) ? sum[s] : T(0);
    }
    layer += hidden * hidden + hidden;
  }
  const Row<T>* last = acts + (depth - 1) * hidden;
  const T* b_out = layer + num_out * hidden;
  for (int o = 0; o < num_out; ++o) {
    T sum[kLanes];
    for (int s = 0; s < kLanes; ++s) sum[s] = b_out[o];
    for (int h = 0; h < hidden; ++h) {
      const T weight = layer[o * hidden + h];
      for (int s = 0; s < kLanes; ++s) sum[s] += weight * last[h][s];
    }
    for (int s = 0; s < kLanes; ++s) out[o][s] = sum[s];
  }
}

/// MLP backward on a tile: adds dL/dinput to g_input (din rows) and each parameter's gradient,
/// summed over the tile, to grad[index]. Per sample the same order as coupling_mlp_backward.
/// work: 3 * hidden rows of scratch.
template <typename T>
inline void mlp_backward(const T* w, int din, int hidden, int depth, int num_out, const Row<T>* input,
                         const Row<T>* acts, const Row<T>* g_out, Row<T>* g_input, T* grad, Row<T>* work) {
  Row<T>* g_h = work;
  Row<T>* g_prev = work + hidden;
  Row<T>* g_pre = work + 2 * hidden;  // gradient before the ReLU of the current layer
  const int64_t first = int64_t(hidden) * din + hidden;
  const int64_t per_layer = int64_t(hidden) * hidden + hidden;
  const int64_t out_at = first + (depth - 1) * per_layer;
  const T* w_out = w + out_at;
  const Row<T>* last = acts + (depth - 1) * hidden;
  for (int h = 0; h < hidden; ++h)
    for (int s = 0; s < kLanes; ++s) g_h[h][s] = T(0);
  for (int o = 0; o < num_out; ++o) {
    const T* go = g_out[o];
    for (int h = 0; h < hidden; ++h) {
      grad[out_at + o * hidden + h] += lane_dot(go, last[h]);
      const T weight = w_out[o * hidden + h];
      for (int s = 0; s < kLanes; ++s) g_h[h][s] += weight * go[s];
    }
    grad[out_at + int64_t(num_out) * hidden + o] += lane_sum(go);
  }
  for (int l = depth - 1; l >= 1; --l) {
    const int64_t at = first + (l - 1) * per_layer;
    const T* layer = w + at;
    const Row<T>* cur = acts + l * hidden;
    const Row<T>* prev = acts + (l - 1) * hidden;
    for (int h = 0; h < hidden; ++h)
      for (int s = 0; s < kLanes; ++s) g_pre[h][s] = cur[h][s] > T(0) ? g_h[h][s] : T(0);  // ReLU'
    for (int j = 0; j < hidden; ++j)
      for (int s = 0; s < kLanes; ++s) g_prev[j][s] = T(0);
    for (int h = 0; h < hidden; ++h) {
      const T* gp = g_pre[h];
      for (int j = 0; j < hidden; ++j) {
        grad[at + h * hidden + j] += lane_dot(gp, prev[j]);
        const T weight = layer[h * hidden + j];
        for (int s = 0; s < kLanes; ++s) g_prev[j][s] += weight * gp[s];
      }
      grad[at + int64_t(hidden) * hidden + h] += lane_sum(gp);
    }
    for (int j = 0; j < hidden; ++j)
      for (int s = 0; s < kLanes; ++s) g_h[j][s] = g_prev[j][s];
  }
  for (int h = 0; h < hidden; ++h)
    for (int s = 0; s < kLanes; ++s) g_pre[h][s] = acts[h][s] > T(0) ? g_h[h][s] : T(0);
  for (int h = 0; h < hidden; ++h) {
    const T* gp = g_pre[h];
    for (int j = 0; j < din; ++j) {
      grad[h * din + j] += lane_dot(gp, input[j]);
      const T weight = w[h * din + j];
      for (int s = 0; s < kLanes; ++s) g_input[j][s] += weight * gp[s];
    }
    grad[int64_t(hidden) * din + h] += lane_sum(gp);
  }
}

/// Forward of one tile: x (dim rows) holds z on entry and the flow's output on exit; log_det
/// (kLanes) gets log|det|; states(k, d) is where lane values of coupling k's input coordinate d go
/// (written through store_state(k, x)).
template <typename T, typename StoreState>
inline void forward(const T* params, const CouplingShape& s, T scale_bound, Row<T>* x, T* log_det,
                    StoreState&& store_state, Row<T>* acts) {
  Row<T> out[2 * kCouplingMaxDim];
  for (int lane = 0; lane < kLanes; ++lane) log_det[lane] = T(0);
  int64_t offset = 0;
  for (int k = 0; k < s.num_couplings; ++k) {
    store_state(k, x);
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    mlp_forward(params + offset, cn, s.hidden, s.depth, mn * (s.affine ? 2 : 1), x + cs, acts, out);
    if (s.affine) {
      for (int j = 0; j < mn; ++j) {
        T scale[kLanes], sech2[kLanes], e[kLanes];
        affine_scale_lanes(out[j], scale_bound, scale, sech2, e);
        for (int lane = 0; lane < kLanes; ++lane) {
          x[ms + j][lane] = x[ms + j][lane] * e[lane] + out[mn + j][lane];
          log_det[lane] += scale[lane];
        }
      }
    } else {
      for (int j = 0; j < mn; ++j)
        for (int lane = 0; lane < kLanes; ++lane) x[ms + j][lane] += out[j][lane];
    }
    offset += coupling_mlp_size(s, k);
  }
  store_state(s.num_couplings, x);
  if (!s.affine) {
    const T* log_scale = params + offset;
    for (int d = 0; d < s.dim; ++d) {
      const T e = flow_math::exp(log_scale[d]);
      for (int lane = 0; lane < kLanes; ++lane) {
        x[d][lane] *= e;
        log_det[lane] += log_scale[d];
      }
    }
  }
}

/// Backward of one tile: states holds the forward's states ((num_couplings + 1) * dim rows,
/// coupling-major); g (dim rows) holds dL/dx on entry and dL/dz on exit; grad_log_det (kLanes);
/// parameter gradients summed over the tile are added to grad.
template <typename T>
inline void backward(const T* params, const CouplingShape& s, T scale_bound, const Row<T>* states,
                     const T* grad_log_det, Row<T>* g, T* grad, Row<T>* work) {
  Row<T>* acts = work;
  Row<T> out[2 * kCouplingMaxDim];
  Row<T> g_out[2 * kCouplingMaxDim];
  Row<T> g_cond[kCouplingMaxDim];
  int64_t offset = coupling_num_params(s) - (s.affine ? 0 : s.dim);
  if (!s.affine) {
    const T* log_scale = params + offset;
    const Row<T>* before = states + s.num_couplings * s.dim;
    for (int d = 0; d < s.dim; ++d) {
      const T e = flow_math::exp(log_scale[d]);
      T term[kLanes];
      for (int lane = 0; lane < kLanes; ++lane) {
        term[lane] = g[d][lane] * before[d][lane] * e + grad_log_det[lane];
        g[d][lane] *= e;
      }
      grad[offset + d] += lane_sum(term);
    }
  }
  for (int k = s.num_couplings - 1; k >= 0; --k) {
    offset -= coupling_mlp_size(s, k);
    const Row<T>* input = states + k * s.dim;
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    const int num_out = mn * (s.affine ? 2 : 1);
    mlp_forward(params + offset, cn, s.hidden, s.depth, num_out, input + cs, acts, out);
    if (s.affine) {
      for (int j = 0; j < mn; ++j) {
        T scale[kLanes], sech2[kLanes], e[kLanes];
        affine_scale_lanes(out[j], scale_bound, scale, sech2, e);
        for (int lane = 0; lane < kLanes; ++lane) {
          const T g_moved = g[ms + j][lane];
          // y = x e^s + t:  dy/ds = x e^s, and log|det| gains s;  s = bound tanh(raw / bound).
          g_out[j][lane] = (g_moved * input[ms + j][lane] * e[lane] + grad_log_det[lane]) * sech2[lane];
          g_out[mn + j][lane] = g_moved;
          g[ms + j][lane] = g_moved * e[lane];
        }
      }
    } else {
      for (int j = 0; j < mn; ++j)
        for (int lane = 0; lane < kLanes; ++lane) g_out[j][lane] = g[ms + j][lane];
    }
    for (int j = 0; j < cn; ++j)
      for (int lane = 0; lane < kLanes; ++lane) g_cond[j][lane] = T(0);
    mlp_backward(params + offset, cn, s.hidden, s.depth, num_out, input + cs, acts, g_out, g_cond, grad + offset,
                 acts + s.depth * s.hidden);
    for (int j = 0; j < cn; ++j)
      for (int lane = 0; lane < kLanes; ++lane) g[cs + j][lane] += g_cond[j][lane];
  }
}

/// Forward of samples [tile_begin * kLanes, min(tile_end * kLanes, batch)): z, x (batch, dim),
/// log_det (batch), states (batch, num_couplings + 1, dim), all contiguous.
template <typename T>
inline void forward_tiles(const T* params, const CouplingShape& s, T scale_bound, const T* z, T* x, T* log_det,
                          T* states, int64_t batch, int64_t tile_begin, int64_t tile_end) {
  const int dim = s.dim;
  const int64_t state_stride = int64_t(s.num_couplings + 1) * dim;
  Row<T> xt[kCouplingMaxDim];
  T ld[kLanes];
  std::vector<Row<T>> acts(static_cast<size_t>(s.depth) * s.hidden);
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t first = tile * kLanes;
    const int n = static_cast<int>(std::min<int64_t>(kLanes, batch - first));
    // Lanes past the batch's end run on zeros and are not written back.
    for (int d = 0; d < dim; ++d)
      for (int lane = 0; lane < kLanes; ++lane) xt[d][lane] = lane < n ? z[(first + lane) * dim + d] : T(0);
    forward(params, s, scale_bound, xt, ld, [&](int k, const Row<T>* rows) {
      for (int lane = 0; lane < n; ++lane) {
        T* state = states + (first + lane) * state_stride + k * dim;
        for (int d = 0; d < dim; ++d) state[d] = rows[d][lane];
      }
    }, acts.data());
    for (int lane = 0; lane < n; ++lane) {
      for (int d = 0; d < dim; ++d) x[(first + lane) * dim + d] = xt[d][lane];
      log_det[first + lane] = ld[lane];
    }
  }
}

/// Backward of samples [begin, end) in tiles of kLanes (lanes past the end run on zeros, so add
/// zero gradients): grad_z (batch, dim) written, parameter gradients added to grad.
template <typename T>
inline void backward_samples(const T* params, const CouplingShape& s, T scale_bound, const T* grad_x,
                             const T* grad_log_det, const T* states, T* grad_z, T* grad, int64_t begin, int64_t end) {
  const int dim = s.dim;
  const int64_t state_rows = int64_t(s.num_couplings + 1) * dim;
  // The tile's states, then the MLP's activations and backward scratch.
  std::vector<Row<T>> buffer(static_cast<size_t>(state_rows + (s.depth + 3) * s.hidden));
  Row<T>* scratch = buffer.data();
  Row<T> gt[kCouplingMaxDim];
  T glt[kLanes];
  for (int64_t first = begin; first < end; first += kLanes) {
    const int n = static_cast<int>(std::min<int64_t>(kLanes, end - first));
    for (int lane = 0; lane < kLanes; ++lane) {
      if (lane < n) {
        const T* state = states + (first + lane) * state_rows;
        for (int64_t r = 0; r < state_rows; ++r) scratch[r][lane] = state[r];
        for (int d = 0; d < dim; ++d) gt[d][lane] = grad_x[(first + lane) * dim + d];
        glt[lane] = grad_log_det[first + lane];
      } else {
        for (int64_t r = 0; r < state_rows; ++r) scratch[r][lane] = T(0);
        for (int d = 0; d < dim; ++d) gt[d][lane] = T(0);
        glt[lane] = T(0);
      }
    }
    backward(params, s, scale_bound, scratch, glt, gt, grad, scratch + state_rows);
    for (int lane = 0; lane < n; ++lane)
      for (int d = 0; d < dim; ++d) grad_z[(first + lane) * dim + d] = gt[d][lane];
  }
}

}  // namespace coupling_tile
}  // namespace pyvi
