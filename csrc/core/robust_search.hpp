// k-NN distances for points of a huge dynamic range (say 1e-300 next to 1e300), where the k-d tree's
// squared distances are not exact (knn_kl.hpp chooses this search only then).
//
// Why: the search compares squared distances. After scaling every coordinate by the power of two
// that puts the largest magnitude in [0.5, 1), a nonzero difference between coordinates that are
// both 0 or >= 2^-kFastRangeBits in magnitude is >= 2^-511 (both are multiples of 2^-511), so its
// square is a normal double and every squared distance is as exact as a squared distance can be.
// With a smaller nonzero coordinate the scaling itself may round it (to 0, even) and a square
// may underflow, so distinct points would count as copies and small distances come out wrong.
// No other power of two helps: the distances between finite doubles range from 2^-1074 to about
// 2^1025 sqrt(d), more than a double holds with full precision at both ends.
//
// Here, instead, points are compared by the logarithm of their distance, on unscaled coordinates:
//
//   log |v| = log s + log(sum_j (v_j / s)^2) / 2,   v = a - b, s = max_j |v_j|,
//
// (s as in LAPACK's dnrm2 and hypot: no square is taken of anything but a ratio in [-1, 1]). A
// difference that overflows (|a_j|, |b_j| near the largest double, opposite signs) is taken from
// the halves, a_j / 2 - b_j / 2 (exact for such values; a component small enough to lose a bit
// in halving weighs nothing next to it), plus log 2. Nothing overflows or underflows, a subnormal
// difference is exact, and the log distance is exact to a few ulps of its magnitude (<= 745): a
// relative error of about 1e-13 in the distance, against 1e-16 for squared distances in range.
// Copies are the points with s == 0 (equal coordinates), exactly; their log distance is -inf.
//
// The search descends from the root, nearer child first, and prunes a node only when its box's
// log distance exceeds the k-th one by more than their rounding (a box's computed distance is not
// always below its points' by rounding), so each query gets exactly the k smallest positive log
// distances by this formula. pyvi._numba.knn and pyvi._knn_scipy compute it in the same order
// with the same libm log, so the backends agree bit for bit here too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kdtree.hpp"
#include "leaf_scan.hpp"

namespace pyvi::knn {

/// Scaled coordinates are exact for the squared search when every nonzero one is >= 2^-kFastRangeBits
/// in magnitude (header): the input spans at most 2^kFastRangeBits.
inline constexpr int kFastRangeBits = 459;

/// How the points are compared: squared distances of the coordinates times 2^-exponent, or
/// (robust) the log distances of the unscaled ones (exponent 0).
struct Scaling {
  int exponent;
  bool robust;
};

/// The scaling for points whose largest magnitude is `largest` and smallest nonzero one `smallest`
/// (+inf: none): the largest into [0.5, 1) when every nonzero value then stays >= 2^-kFastRangeBits,
/// else the robust log distances.
inline Scaling choose_scaling(double largest, double smallest) {
  int exponent = 0;
  if (largest > 0.0) std::frexp(largest, &exponent);  // largest in [2^(exponent - 1), 2^exponent)
  if (std::ldexp(smallest, -exponent) < std::ldexp(1.0, -kFastRangeBits)) return {0, true};
  return {exponent, false};
}

/// log s + log(sum_j (g_j / s)^2) / 2, s = max_j |g_j|, for g_j = gap(j, halve) (header); -inf
/// when every g_j is 0. `gap(j, true)` is the halves' difference, used when some gap overflows.
template <class Gap>
inline double log_norm(int64_t d, Gap gap) {
  double s = 0.0;
  for (int64_t j = 0; j < d; ++j) s = max_of(s, std::abs(gap(j, false)));
  if (s == 0.0) return -std::numeric_limits<double>::infinity();
  const bool halve = std::isinf(s);
  if (halve) {
    s = 0.0;
    for (int64_t j = 0; j < d; ++j) s = max_of(s, std::abs(gap(j, true)));
  }
  double t = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double r = gap(j, halve) / s;
    t += r * r;
  }
  const double log_s = halve ? std::log(s) + 0.6931471805599453 : std::log(s);  // log 2
  return log_s + 0.5 * std::log(t);
}

/// The log distance between d-vectors a and b (-inf when a == b).
inline double robust_log_distance(const double* a, const double* b, int64_t d) {
  return log_norm(d, [&](int64_t j, bool halve) { return halve ? a[j] * 0.5 - b[j] * 0.5 : a[j] - b[j]; });
}

/// The log distance from q to a box (lo[0..d), hi[0..d)); -inf inside.
inline double robust_log_box_distance(const double* q, const double* lo, const double* hi, int64_t d) {
  return log_norm(d, [&](int64_t j, bool halve) {
    const double below = halve ? lo[j] * 0.5 - q[j] * 0.5 : lo[j] - q[j];
    const double above = halve ? q[j] * 0.5 - hi[j] * 0.5 : q[j] - hi[j];
    return max_of(max_of(below, above), 0.0);
  });
}

/// The rounding that a box's and a point's log distances may each carry, twice, with margin: an
/// ulp of log values up to 1024 (4096 eps) and (d + 4) ulps of the sum of squares.
inline double robust_slack(int64_t d) {
  return static_cast<double>(4096 + 4 * d + 16) * std::numeric_limits<double>::epsilon();
}

template <int D>
class RobustSearch {
 public:
  explicit RobustSearch(const KDTree<D>& tree) : tree_(tree), d_(tree.dim()), slack_(robust_slack(tree.dim())) {}

  /// The k smallest log distances of the points not equal to q, ascending, in best[0..k) (+inf
  /// where fewer exist); returns the number of copies of q.
  int64_t search(const double* q, int64_t k, double* best) const {
    for (int64_t i = 0; i < k; ++i) best[i] = std::numeric_limits<double>::infinity();
    int64_t zeros = 0;
    visit(0, q, k, best, zeros);
    return zeros;
  }

 private:
  double box_distance(const double* q, int64_t id) const {
    const double* box = tree_.box(id);
    return robust_log_box_distance(q, box, box + d_, d_);
  }

  void visit(int64_t id, const double* q, int64_t k, double* best, int64_t& zeros) const {
    const int64_t left = tree_.left(id);
    if (left < 0) {
      const bool uniform = tree_.uniform(id);  // copies of one point: one distance (kdtree.hpp)
      const double* p = tree_.points() + tree_.begin(id) * d_;
      const int64_t count = tree_.end(id) - tree_.begin(id);
      for (int64_t r = 0; r < (uniform ? 1 : count); ++r) {
        const double s = robust_log_distance(p + r * d_, q, d_);
        if (std::isinf(s)) {  // -inf: a copy of q
          zeros += uniform ? count : 1;
          continue;
        }
        for (int64_t c = 0; c < (uniform ? std::min(count, k) : 1); ++c) insert_sorted<0>(best, k, s);
      }
      return;
    }
    const double dl = box_distance(q, left), dr = box_distance(q, left + 1);
    const int64_t first = dr < dl ? left + 1 : left;
    const double d_first = dr < dl ? dr : dl, d_second = dr < dl ? dl : dr;
    // A node holding q has log box distance -inf: never pruned, so the copy count is exact.
    if (d_first <= best[k - 1] + slack_) visit(first, q, k, best, zeros);
    if (d_second <= best[k - 1] + slack_) visit(first == left ? left + 1 : left, q, k, best, zeros);
  }

  const KDTree<D>& tree_;
  int64_t d_;
  double slack_;
};

}  // namespace pyvi::knn
