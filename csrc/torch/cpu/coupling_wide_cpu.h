// CPU backward of coupling stacks with wide conditioners (hidden >= kWideMinHidden in
// coupling_cpu.cpp; NICE, Dinh et al. 2014, arXiv:1410.8516; RealNVP, Dinh et al. 2016,
// arXiv:1605.08803): the math of ../../common/coupling.h on tiles of interleaved samples, with the
// parameter-gradient reductions written as register-blocked outer products.
//
// Why not the tile backward of coupling_tile_cpu.h: it sums each weight's gradient over a tile's
// lanes as it goes (a horizontal reduction per weight per tile), which costs more than the
// products themselves once the hidden layers are square. Why not BLAS: a GEMM's reduction order
// (how it splits the batch dimension) depends on the library, the CPU and the number of threads,
// and the promise is gradients that do not.
//
// So: one call handles one chunk of samples (cpu/chunked_sum.h fixes the chunks by the batch size
// alone and adds the chunks' sums in order). Within it, coupling by coupling from the last, each
// tile of kLanes samples recomputes the coupling's MLP (coupling_tile::mlp_forward, the forward's
// own code, so the ReLU masks match the forward's) and runs its backward:
//
//   weight gradients   acc[i][j] += g[i] * a[j]       outer products over the tile's lanes into
//                                                     vector partial sums (kVecLanes lanes each),
//   input gradients    g_prev[j] = sum_i W[i][j] g[i]  a tile-wide multiply-add per weight,
//
// and after the chunk's last tile each partial sum is reduced across its lanes in a fixed tree.
// Every sum's order is fixed by the batch size: gradients are bit-identical for any thread count
// (they can differ in the last bits between CPUs of different instruction sets, see isa.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../common/coupling.h"
#include "coupling_tile_cpu.h"
#include "isa.h"

namespace pyvi {
namespace coupling_wide {

using coupling_tile::kLanes;
using coupling_tile::Row;

/// A 32-byte vector of T (GCC vector extension: one AVX2 register in isa.h's x86-64-v3 copy, two
/// SSE2 registers in the baseline one; the arithmetic is elementwise, the same in both).
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(32)));
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int kVecLanes = static_cast<int>(32 / sizeof(T));
/// Vectors per tile row.
template <typename T>
constexpr int kRowVecs = kLanes / kVecLanes<T>;

template <typename T>
PYVI_ALWAYS_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);  // unaligned: the buffers are plain arrays of T
  return v;
}

template <typename T>
PYVI_ALWAYS_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}

/// The sum of v's lanes, in a fixed tree (halves added lane-wise until one is left).
template <typename T>
PYVI_ALWAYS_INLINE T lane_sum(Vec<T> v) {
  T lanes[kVecLanes<T>];
  std::memcpy(lanes, &v, sizeof v);
  for (int width = kVecLanes<T> / 2; width >= 1; width /= 2)
    for (int s = 0; s < width; ++s) lanes[s] += lanes[s + width];
  return lanes[0];
}

// The accumulators below are vectors of kVecLanes partial sums, stored as plain arrays of T:
// accumulator p at acc + p * kVecLanes.

/// acc[i * n + j] += a[i] * b[j] lane by lane (i < m, j < n): each accumulator vector gathers the
/// products of its lane positions over the tile. Blocks of 2 x 4 accumulators stay in registers
/// (8 of AVX2's 16) while the rows stream; each accumulator's sum order is the same in the blocks
/// and in the edges (q ascending), so the blocking does not change the result.
template <typename T>
PYVI_ALWAYS_INLINE void add_outer(T* acc, int m, int n, const Row<T>* a, const Row<T>* b) {
  constexpr int kV = kVecLanes<T>;
  int i = 0;
  for (; i + 2 <= m; i += 2) {
    T* row0 = acc + int64_t(i) * n * kV;
    T* row1 = row0 + int64_t(n) * kV;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      Vec<T> c00 = load(row0 + j * kV), c01 = load(row0 + (j + 1) * kV), c02 = load(row0 + (j + 2) * kV),
             c03 = load(row0 + (j + 3) * kV);
      Vec<T> c10 = load(row1 + j * kV), c11 = load(row1 + (j + 1) * kV), c12 = load(row1 + (j + 2) * kV),
             c13 = load(row1 + (j + 3) * kV);
      for (int q = 0; q < kRowVecs<T>; ++q) {
        const Vec<T> a0 = load(a[i] + q * kV), a1 = load(a[i + 1] + q * kV);
        const Vec<T> b0 = load(b[j] + q * kV), b1 = load(b[j + 1] + q * kV);
        c00 += a0 * b0, c10 += a1 * b0, c01 += a0 * b1, c11 += a1 * b1;
        const Vec<T> b2 = load(b[j + 2] + q * kV), b3 = load(b[j + 3] + q * kV);
        c02 += a0 * b2, c12 += a1 * b2, c03 += a0 * b3, c13 += a1 * b3;
      }
      store(row0 + j * kV, c00), store(row0 + (j + 1) * kV, c01), store(row0 + (j + 2) * kV, c02);
      store(row0 + (j + 3) * kV, c03);
      store(row1 + j * kV, c10), store(row1 + (j + 1) * kV, c11), store(row1 + (j + 2) * kV, c12);
      store(row1 + (j + 3) * kV, c13);
    }
    for (; j < n; ++j) {
      Vec<T> c0 = load(row0 + j * kV), c1 = load(row1 + j * kV);
      for (int q = 0; q < kRowVecs<T>; ++q) {
        const Vec<T> bj = load(b[j] + q * kV);
        c0 += load(a[i] + q * kV) * bj, c1 += load(a[i + 1] + q * kV) * bj;
      }
      store(row0 + j * kV, c0), store(row1 + j * kV, c1);
    }
  }
  for (; i < m; ++i) {
    T* row = acc + int64_t(i) * n * kV;
    for (int j = 0; j < n; ++j) {
      Vec<T> c = load(row + j * kV);
      for (int q = 0; q < kRowVecs<T>; ++q) c += load(a[i] + q * kV) * load(b[j] + q * kV);
      store(row + j * kV, c);
    }
  }
}

/// acc[i] += a[i] lane by lane (i < m): bias gradients.
template <typename T>
PYVI_ALWAYS_INLINE void add_rows(T* acc, int m, const Row<T>* a) {
  constexpr int kV = kVecLanes<T>;
  for (int i = 0; i < m; ++i) {
    Vec<T> c = load(acc + i * kV);
    for (int q = 0; q < kRowVecs<T>; ++q) c += load(a[i] + q * kV);
    store(acc + i * kV, c);
  }
}

/// out[j] = sum over i ascending of w[i * n + j] * a[i] (j < n; w is m x n row-major): the
/// gradient of a layer's input, W^T g, one tile-wide multiply-add per weight.
template <typename T>
PYVI_ALWAYS_INLINE void transposed_product(Row<T>* out, const T* w, int m, int n, const Row<T>* a) {
  for (int j = 0; j < n; ++j) {
    T sum[kLanes];
    for (int s = 0; s < kLanes; ++s) sum[s] = T(0);
    for (int i = 0; i < m; ++i) {
      const T weight = w[int64_t(i) * n + j];
      for (int s = 0; s < kLanes; ++s) sum[s] += weight * a[i][s];
    }
    for (int s = 0; s < kLanes; ++s) out[j][s] = sum[s];
  }
}

/// out[h] = g[h] where the layer's post-ReLU activation is positive, else 0 (ReLU').
template <typename T>
PYVI_ALWAYS_INLINE void relu_backward(Row<T>* out, const Row<T>* act, const Row<T>* g, int rows) {
  for (int h = 0; h < rows; ++h)
    for (int s = 0; s < kLanes; ++s) out[h][s] = act[h][s] > T(0) ? g[h][s] : T(0);
}

/// One coupling MLP's backward on a tile: dL/dinput to g_input (din rows, overwritten); every
/// parameter's gradient added to acc (indexed like the MLP's packed block). work: 2 * hidden rows.
template <typename T>
PYVI_ALWAYS_INLINE void mlp_backward(const T* w, int din, int hidden, int depth, int num_out, const Row<T>* input,
                                     const Row<T>* acts, const Row<T>* g_out, Row<T>* g_input, T* acc,
                                     Row<T>* work) {
  Row<T>* g_h = work;           // dL/d(post-ReLU activations) of the current layer
  Row<T>* g_pre = work + hidden;  // dL/d(pre-ReLU) of the current layer
  const int64_t first = int64_t(hidden) * din + hidden;
  const int64_t per_layer = int64_t(hidden) * hidden + hidden;
  const int64_t out_at = first + (depth - 1) * per_layer;
  constexpr int kV = kVecLanes<T>;
  add_outer(acc + out_at * kV, num_out, hidden, g_out, acts + (depth - 1) * hidden);
  add_rows(acc + (out_at + int64_t(num_out) * hidden) * kV, num_out, g_out);
  transposed_product(g_h, w + out_at, num_out, hidden, g_out);
  for (int l = depth - 1; l >= 1; --l) {
    const int64_t at = first + (l - 1) * per_layer;
    relu_backward(g_pre, acts + l * hidden, g_h, hidden);
    add_outer(acc + at * kV, hidden, hidden, g_pre, acts + (l - 1) * hidden);
    add_rows(acc + (at + int64_t(hidden) * hidden) * kV, hidden, g_pre);
    transposed_product(g_h, w + at, hidden, hidden, g_pre);
  }
  relu_backward(g_pre, acts, g_h, hidden);
  add_outer(acc, hidden, din, g_pre, input);
  add_rows(acc + int64_t(hidden) * din * kV, hidden, g_pre);
  transposed_product(g_input, w, hidden, din, g_pre);
}

/// sums[p] += the lane sum of acc[p] (p < count), and acc zeroed for the next coupling.
template <typename T>
PYVI_ALWAYS_INLINE void reduce_into(T* sums, T* acc, int64_t count) {
  for (int64_t p = 0; p < count; ++p) sums[p] += lane_sum<T>(load(acc + p * kVecLanes<T>));
  std::fill(acc, acc + count * kVecLanes<T>, T(0));
}

/// The backward of samples [begin, end), one chunk: grad_x, grad_z (batch, dim), grad_log_det
/// (batch), states (batch, num_couplings + 1, dim), contiguous; grad_z written; this chunk's sum of
/// every parameter gradient added to sums (num_params, zeros on entry: chunked_sum.h's row).
template <typename T>
inline void backward_chunk(const T* params, const CouplingShape& s, T scale_bound, const T* grad_x,
                           const T* grad_log_det, const T* states, T* grad_z, T* sums, int64_t begin, int64_t end) {
  const int dim = s.dim, hidden = s.hidden, depth = s.depth;
  const int64_t state_stride = int64_t(s.num_couplings + 1) * dim;
  const int64_t num_tiles = (end - begin + kLanes - 1) / kLanes;
  int64_t acc_size = s.affine ? 0 : dim;
  for (int k = 0; k < s.num_couplings; ++k) acc_size = std::max(acc_size, coupling_mlp_size(s, k));
  std::vector<T> acc(static_cast<size_t>(acc_size * kVecLanes<T>), T(0));
  // Per tile: dL/d(running x) (dim rows) and dL/dlog|det| (one row); lanes past the end are zeros,
  // which add exact zeros to every sum.
  std::vector<Row<T>> g(static_cast<size_t>(num_tiles * (dim + 1)));
  // Scratch of one tile: the coupling's input (dim rows), its MLP's activations (depth * hidden),
  // the backward's work rows (2 * hidden).
  std::vector<Row<T>> scratch(static_cast<size_t>(dim + (depth + 2) * hidden));
  Row<T>* input = scratch.data();
  Row<T>* acts = input + dim;
  Row<T>* work = acts + depth * hidden;
  Row<T> out[2 * kCouplingMaxDim], g_out[2 * kCouplingMaxDim], g_cond[kCouplingMaxDim];

  auto lanes_of = [&](int64_t tile) { return static_cast<int>(std::min<int64_t>(kLanes, end - begin - tile * kLanes)); };
  auto gather_state = [&](int64_t tile, int k) {  // coupling k's input (k = num_couplings: NICE's scaling's)
    const int n = lanes_of(tile);
    const T* at = states + (begin + tile * kLanes) * state_stride + int64_t(k) * dim;
    for (int d = 0; d < dim; ++d)
      for (int lane = 0; lane < kLanes; ++lane) input[d][lane] = lane < n ? at[lane * state_stride + d] : T(0);
  };
  for (int64_t tile = 0; tile < num_tiles; ++tile) {
    const int n = lanes_of(tile);
    Row<T>* gt = g.data() + tile * (dim + 1);
    for (int lane = 0; lane < kLanes; ++lane) {
      const int64_t sample = begin + tile * kLanes + lane;
      for (int d = 0; d < dim; ++d) gt[d][lane] = lane < n ? grad_x[sample * dim + d] : T(0);
      gt[dim][lane] = lane < n ? grad_log_det[sample] : T(0);
    }
  }

  int64_t offset = coupling_num_params(s);
  if (!s.affine) {  // NICE's final x * exp(log_scale): log|det| gains sum(log_scale)
    offset -= dim;
    const T* log_scale = params + offset;
    for (int64_t tile = 0; tile < num_tiles; ++tile) {
      Row<T>* gt = g.data() + tile * (dim + 1);
      gather_state(tile, s.num_couplings);
      for (int d = 0; d < dim; ++d) {
        const T e = flow_math::exp(log_scale[d]);
        T term[kLanes];
        for (int lane = 0; lane < kLanes; ++lane) {
          term[lane] = gt[d][lane] * input[d][lane] * e + gt[dim][lane];
          gt[d][lane] *= e;
        }
        add_rows(acc.data() + d * kVecLanes<T>, 1, &term);
      }
    }
    reduce_into(sums + offset, acc.data(), dim);
  }
  for (int k = s.num_couplings - 1; k >= 0; --k) {
    const int64_t size = coupling_mlp_size(s, k);
    offset -= size;
    const T* w = params + offset;
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    const int num_out = mn * (s.affine ? 2 : 1);
    for (int64_t tile = 0; tile < num_tiles; ++tile) {
      Row<T>* gt = g.data() + tile * (dim + 1);
      gather_state(tile, k);
      coupling_tile::mlp_forward(w, cn, hidden, depth, num_out, input + cs, acts, out);
      if (s.affine) {
        for (int j = 0; j < mn; ++j) {
          T scale[kLanes], sech2[kLanes], e[kLanes];
          coupling_tile::affine_scale_lanes(out[j], scale_bound, scale, sech2, e);
          for (int lane = 0; lane < kLanes; ++lane) {
            const T g_moved = gt[ms + j][lane];
            // y = x e^s + t:  dy/ds = x e^s, and log|det| gains s;  s = bound tanh(raw / bound).
            g_out[j][lane] = (g_moved * input[ms + j][lane] * e[lane] + gt[dim][lane]) * sech2[lane];
            g_out[mn + j][lane] = g_moved;
            gt[ms + j][lane] = g_moved * e[lane];
          }
        }
      } else {
        for (int j = 0; j < mn; ++j)
          for (int lane = 0; lane < kLanes; ++lane) g_out[j][lane] = gt[ms + j][lane];
      }
      mlp_backward(w, cn, hidden, depth, num_out, input + cs, acts, g_out, g_cond, acc.data(), work);
      for (int j = 0; j < cn; ++j)
        for (int lane = 0; lane < kLanes; ++lane) gt[cs + j][lane] += g_cond[j][lane];
    }
    reduce_into(sums + offset, acc.data(), size);
  }

  for (int64_t tile = 0; tile < num_tiles; ++tile) {
    const Row<T>* gt = g.data() + tile * (dim + 1);
    const int n = lanes_of(tile);
    for (int lane = 0; lane < n; ++lane)
      for (int d = 0; d < dim; ++d) grad_z[(begin + tile * kLanes + lane) * dim + d] = gt[d][lane];
  }
}

}  // namespace coupling_wide
}  // namespace pyvi
