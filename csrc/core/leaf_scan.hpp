// The inner loop of the k-d tree search (kdtree.hpp): merging one leaf's points into a query's
// sorted list of the k smallest strictly positive squared distances, counting the points at
// distance exactly 0 on the side (the estimator's duplicate rule, knn_kl.hpp).
//
// Three ways:
// - merge_uniform (a leaf whose points are all copies of one point): one distance for the leaf.
// - merge_each (KDTree's one-query search): every point goes through a branch-free sorted
//   insertion (k - 1 min/max pairs). It costs the same whether or not the point enters the list;
//   any dimension, any k.
// - merge_filtered_2d (group_search.hpp: 2-D, k known at compile time): the leaf's squared
//   distances are computed first,
//   two points per SSE2 instruction, into a small buffer, compared at once with the list's k-th
//   entry, and only the points below it (a bit mask) are inserted. Past the query's first leaf
//   most points are farther than the k-th entry (about 2 in 3 at k = 5), so they cost a few
//   instructions instead of the ~2k of an insertion; the mask loop mispredicts about once per
//   chunk, not once per point as a filtering branch would.
//
// Both give the same list and the same zero count: the list after a merge is the k smallest of
// the old list and the leaf's positive distances, whatever subset of the points that cannot
// enter it is skipped. Distances are d0*d0 + d1*d1 (+ ...) with d_j = p_j - q_j in that order, in
// both, so they equal numba's and scipy's bit for bit.
#pragma once

#include <cstdint>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pyvi::knn {

// min and max that compile to one instruction without branches (std::min/max of doubles often
// compile to a branch, which mispredicts on unpredictable data). No NaNs reach them.
inline double min_of(double a, double b) {
#if defined(__SSE2__)
  return _mm_cvtsd_f64(_mm_min_sd(_mm_set_sd(a), _mm_set_sd(b)));
#else
  return a < b ? a : b;
#endif
}
inline double max_of(double a, double b) {
#if defined(__SSE2__)
  return _mm_cvtsd_f64(_mm_max_sd(_mm_set_sd(a), _mm_set_sd(b)));
#else
  return a < b ? b : a;
#endif
}

/// Index of the lowest set bit of a nonzero mask.
inline int lowest_bit(uint64_t mask) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(mask);
#else
  int i = 0;
  for (; (mask & 1) == 0; mask >>= 1) ++i;
  return i;
#endif
}

/// Inserts s into the ascending best[0..k), dropping the largest; no change when s >= best[k - 1].
/// Branch free: b[i] = min(b[i], max(b[i - 1], s)) from the top down.
template <int K>
inline void insert_sorted(double* best, int64_t k, double s) {
  const int64_t size = K > 0 ? K : k;
  for (int64_t i = size - 1; i > 0; --i) best[i] = min_of(best[i], max_of(best[i - 1], s));
  best[0] = min_of(best[0], s);
}

/// Merges rows [0, count) of the row-major count x d `p` into best[0..k) (K > 0: k == K), each
/// through insert_sorted; returns the number of points at squared distance 0 from q.
template <int K>
inline int64_t merge_each(const double* p, int64_t count, int64_t d, const double* q, double* best,
                          int64_t k) {
  int64_t zeros = 0;
  for (int64_t r = 0; r < count; ++r, p += d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double diff = p[j] - q[j];
      s += diff * diff;
    }
    zeros += (s == 0.0);
    if (s == 0.0) s = std::numeric_limits<double>::infinity();  // rare, predictable: never inserted
    insert_sorted<K>(best, k, s);
  }
  return zeros;
}

/// merge_each for a uniform leaf (count >= 1 copies of one point, kdtree.hpp): one distance, the
/// same as merge_each's for any of its rows, inserted min(count, k) times (the list then holds what
/// count insertions would leave), or count zeros. O(k) whatever the count: copies cost nothing.
template <int K>
inline int64_t merge_uniform(const double* p, int64_t count, int64_t d, const double* q, double* best,
                             int64_t k) {
  double s = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double diff = p[j] - q[j];
    s += diff * diff;
  }
  if (s == 0.0) return count;
  const int64_t size = K > 0 ? K : k;
  for (int64_t c = 0; c < (count < size ? count : size); ++c) insert_sorted<K>(best, k, s);
  return 0;
}

/// merge_each for 2-D points and k = K, inserting only the points below best[K - 1] (header).
template <int K>
inline int64_t merge_filtered_2d(const double* p, int64_t count, const double* q, double* best) {
  static_assert(K > 0, "the filtered merge needs k at compile time");
  constexpr int64_t kChunk = 32;  // distances buffered per mask (bits of a uint32_t)
  alignas(16) double s[kChunk];
  int64_t zeros = 0;
  for (int64_t base = 0; base < count; base += kChunk, p += 2 * kChunk) {
    const int64_t c = count - base < kChunk ? count - base : kChunk;
    // The k-th entry as of the chunk's start: a stale (larger) bound only lets through points
    // that the insertion then leaves out.
    const double bound = best[K - 1];
    uint32_t candidates = 0;
    int64_t i = 0;
#if defined(__SSE2__)
    const __m128d qq = _mm_loadu_pd(q), vbound = _mm_set1_pd(bound), zero = _mm_setzero_pd();
    __m128i zero_count = _mm_setzero_si128();  // per lane, minus the number of zeros
    for (; i + 1 < c; i += 2) {
      __m128d a = _mm_sub_pd(_mm_loadu_pd(p + 2 * i), qq);  // (x_i - q0, y_i - q1)
      __m128d b = _mm_sub_pd(_mm_loadu_pd(p + 2 * i + 2), qq);
      a = _mm_mul_pd(a, a);
      b = _mm_mul_pd(b, b);
      const __m128d s2 = _mm_add_pd(_mm_unpacklo_pd(a, b), _mm_unpackhi_pd(a, b));  // dx^2 + dy^2
      _mm_store_pd(s + i, s2);
      const __m128d is_zero = _mm_cmpeq_pd(s2, zero);
      zero_count = _mm_add_epi64(zero_count, _mm_castpd_si128(is_zero));  // -1 per zero
      candidates |= static_cast<uint32_t>(_mm_movemask_pd(_mm_andnot_pd(is_zero, _mm_cmplt_pd(s2, vbound)))) << i;
    }
    alignas(16) int64_t lanes[2];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), zero_count);
    zeros -= lanes[0] + lanes[1];
#endif
    for (; i < c; ++i) {  // the odd point out (or all of them without SSE2)
      const double dx = p[2 * i] - q[0], dy = p[2 * i + 1] - q[1];
      s[i] = dx * dx + dy * dy;
      zeros += (s[i] == 0.0);
      candidates |= static_cast<uint32_t>(s[i] < bound && s[i] != 0.0) << i;
    }
    for (; candidates != 0; candidates &= candidates - 1) insert_sorted<K>(best, K, s[lowest_bit(candidates)]);
  }
  return zeros;
}

}  // namespace pyvi::knn
