// k-NN search for a group of nearby queries at once: 2-D, k known at compile time, the queries
// being one leaf's points of a k-d tree (knn_kl.hpp groups x's points by the leaves of x's tree).
//
// Why: a one-query search (KDTree::search) spends most of its time walking the tree (box
// distances, and pruning branches that the data makes unpredictable), not scanning points. The
// queries of one leaf lie close together and need almost the same leaves, so the group walks the
// tree once: a node is pruned when its box is at least as far from the group's box as the largest
// of the group's k-th distances, and every leaf reached is merged into each query's list
// (leaf_scan.hpp, which skips at a few instructions per point the points that cannot enter a
// list). Rounding is monotone, so the box-to-box distance is never more than any query's
// point-to-box distance, which is never more than its distance to any point in the box: pruning
// drops only points that cannot enter the list, and no point at distance 0 (a node whose box
// holds a query is at distance 0, below every k-th distance, which is > 0). So each query gets
// exactly KDTree::search's list and zero count, bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kdtree.hpp"
#include "leaf_scan.hpp"

namespace pyvi::knn {

/// Squared distance between 2-D boxes a and b (lo[0..2), hi[0..2) each), 0 when they meet.
inline double box_box_distance2_2d(const double* a, const double* b) {
  double s = 0.0;
  for (int j = 0; j < 2; ++j) s += squared_gap(b[j] - a[2 + j], a[j] - b[2 + j]);
  return s;
}

template <int K>
class GroupSearch2d {
 public:
  /// Most queries in one group (callers cut bigger leaves into groups with the leaf's box).
  static constexpr int64_t kMaxGroup = 32;

  explicit GroupSearch2d(const KDTree<2>& tree) : tree_(tree) {}

  /// For the g <= kMaxGroup row-major 2-D queries q, all inside `box` (lo0, lo1, hi0, hi1):
  /// best[i][0..K) the K smallest strictly positive squared distances from q_i to the tree's
  /// points, ascending (+inf where fewer exist), zeros[i] the number at distance 0.
  void run(const double* q, int64_t g, const double* box, double (*best)[K], int64_t* zeros) {
    q_ = q;
    g_ = g;
    box_ = box;
    best_ = best;
    zeros_ = zeros;
    for (int64_t i = 0; i < kMaxGroup; ++i) {  // padded to kMaxGroup: whole SSE2 pairs
      const int64_t from = i < g ? i : g - 1;
      qx_[i] = q[2 * from];
      qy_[i] = q[2 * from + 1];
      kth_[i] = std::numeric_limits<double>::infinity();
    }
    for (int64_t i = 0; i < g; ++i) {
      for (int64_t j = 0; j < K; ++j) best[i][j] = std::numeric_limits<double>::infinity();
      zeros[i] = 0;
    }
    bound_ = std::numeric_limits<double>::infinity();
    visit(0);
  }

 private:
  void visit(int64_t id) {
    const int64_t left = tree_.left(id);
    if (left < 0) {
      scan(id);
      return;
    }
    const double dl = box_box_distance2_2d(box_, tree_.box(left));
    const double dr = box_box_distance2_2d(box_, tree_.box(left + 1));
    // Nearer child first, chosen without a branch; strict comparisons, as in KDTree::visit.
    const bool right_first = dr < dl;
    const double distance[2] = {dl, dr};
    const double d_first = distance[right_first], d_second = distance[!right_first];
    if (d_first < bound_) visit(left + right_first);
    if (d_second < bound_) visit(left + !right_first);
  }

  /// Merges leaf id into the lists of the queries whose k-th distance exceeds their distance to
  /// the leaf's box. Which queries those are is found two at a time and kept as a bit mask: a
  /// branch per query would mispredict about once in three.
  void scan(int64_t id) {
    const int64_t begin = tree_.begin(id), count = tree_.end(id) - begin;
    const double* p = tree_.points() + 2 * begin;
    const double* box = tree_.box(id);
    uint64_t wanted = 0;
#if defined(__SSE2__)
    const __m128d lo0 = _mm_set1_pd(box[0]), lo1 = _mm_set1_pd(box[1]);
    const __m128d hi0 = _mm_set1_pd(box[2]), hi1 = _mm_set1_pd(box[3]);
    const __m128d half = _mm_set1_pd(0.5), sign = _mm_set1_pd(-0.0);
    const auto gap = [&](__m128d below, __m128d above) {  // squared_gap before squaring, two queries at once
      const __m128d b = _mm_add_pd(below, _mm_andnot_pd(sign, below));
      const __m128d a = _mm_add_pd(above, _mm_andnot_pd(sign, above));
      return _mm_mul_pd(half, _mm_add_pd(b, a));
    };
    for (int64_t i = 0; i < g_; i += 2) {
      const __m128d x = _mm_load_pd(qx_ + i), y = _mm_load_pd(qy_ + i);
      const __m128d gx = gap(_mm_sub_pd(lo0, x), _mm_sub_pd(x, hi0));
      const __m128d gy = gap(_mm_sub_pd(lo1, y), _mm_sub_pd(y, hi1));
      const __m128d d2 = _mm_add_pd(_mm_mul_pd(gx, gx), _mm_mul_pd(gy, gy));
      wanted |= static_cast<uint64_t>(_mm_movemask_pd(_mm_cmplt_pd(d2, _mm_load_pd(kth_ + i)))) << i;
    }
    wanted &= (uint64_t{1} << g_) - 1;  // g_ <= 32
#else
    for (int64_t i = 0; i < g_; ++i) {
      const double q[2] = {qx_[i], qy_[i]};
      wanted |= static_cast<uint64_t>(tree_.box_distance2(q, id) < kth_[i]) << i;
    }
#endif
    const bool uniform = tree_.uniform(id);  // copies of one point: one distance (kdtree.hpp)
    for (; wanted != 0; wanted &= wanted - 1) {
      const int i = lowest_bit(wanted);
      zeros_[i] += uniform ? merge_uniform<K>(p, count, 2, q_ + 2 * i, best_[i], K)
                           : merge_filtered_2d<K>(p, count, q_ + 2 * i, best_[i]);
      kth_[i] = best_[i][K - 1];
    }
    double bound = 0.0;
    for (int64_t i = 0; i < g_; ++i) bound = max_of(bound, kth_[i]);
    bound_ = bound;
  }

  const KDTree<2>& tree_;
  const double* q_ = nullptr;
  int64_t g_ = 0;
  const double* box_ = nullptr;
  double (*best_)[K] = nullptr;
  int64_t* zeros_ = nullptr;
  double bound_ = 0.0;  // the largest k-th distance of the group so far
  // The queries' coordinates and current k-th distances, one array each (two per SSE2 register).
  alignas(16) double qx_[kMaxGroup], qy_[kMaxGroup], kth_[kMaxGroup];
};

}  // namespace pyvi::knn
