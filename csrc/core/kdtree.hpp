// An exact k-d tree for small-k nearest-neighbour distances, written for the k-NN KL estimator.
//
// Layout: the points are copied once, in tree order, into one contiguous row-major buffer, so a
// leaf (<= leaf_size points) is a contiguous block and a query that walks nearby leaves walks
// nearby memory. Nodes keep their tight bounding box for pruning. The build splits each node at
// the median (of a sample) of its cell's widest coordinate with a branch-free partition that moves
// whole rows, so it streams through memory; the tree is balanced, depth about log2(n / leaf_size).
//
// Search: from a leaf near the query (its own leaf, or where the previous, nearby query found its
// nearest point), climbing towards the root and searching each sibling subtree that the squared
// box distance does not prune, depth first, nearer child first; the climb stops once the k-NN ball
// lies inside the current node's cell. Only squared distances are compared, and the hot loops are
// branch free where the data would make branches unpredictable (box distances, child order, the
// sorted insertion), which is what a 2-D search spends its time on otherwise. The search keeps the
// k smallest *strictly positive* squared distances in a sorted array (k is small) and counts the
// points at distance exactly 0 on the side: that is what the estimator's duplicate rule needs
// (knn_kl.hpp). A node whose box holds the query has box distance 0 < any kept distance, so it is
// never pruned and the zero count is exact.
//
// D > 0 fixes the dimension at compile time (unrolled distance loops for d = 1, 2, 3); D == 0 reads
// it at run time.
#pragma once

#include <algorithm>
#include <cmath>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

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

template <int D>
struct Dimension {
  static constexpr int64_t value(int64_t) { return D; }
};
template <>
struct Dimension<0> {
  static int64_t value(int64_t dim) { return dim; }
};

template <int D>
class KDTree {
 public:
  struct Node {
    int64_t begin, end;  // rows [begin, end) of points()
    int64_t left;        // first child (the second is left + 1); -1 for a leaf
  };

  /// Copies the n x dim row-major `points`, each value times 2^-exponent (correctly rounded, so the
  /// same as numpy.ldexp), and builds the tree. n >= 1.
  KDTree(const double* points, int64_t n, int64_t dim, int exponent, int64_t leaf_size)
      : n_(n), dim_(Dimension<D>::value(dim)), points_(n * dim_), index_(n) {
    const int64_t d = dim_;
    leaf_size = std::max<int64_t>(leaf_size, 1);
    if (std::abs(exponent) < 1000) {  // 2^-exponent is a normal double: one exact multiply
      const double scale = std::ldexp(1.0, -exponent);
      for (int64_t i = 0; i < n * d; ++i) points_[i] = points[i] * scale;
    } else {
      for (int64_t i = 0; i < n * d; ++i) points_[i] = std::ldexp(points[i], -exponent);
    }
    for (int64_t i = 0; i < n; ++i) index_[i] = i;
    nodes_.reserve(static_cast<size_t>(4 * (n / leaf_size + 1)));
    // Level by level, each node's rows are partitioned from one buffer into the other around the
    // median of a sample of its keys along the widest side of its *cell* (the parent's cell cut at
    // the split). The partition is branch free (the side only selects the destination), so the
    // build does not pay a mispredicted branch per point and level as a quickselect would. Which
    // split is chosen never changes results (the search prunes with tight boxes), only speed.
    std::vector<double>& cell = cell_;
    cell.assign(2 * d, 0.0);
    exact_.assign(1, 1);
    for (int64_t j = 0; j < d; ++j) {
      cell[j] = std::numeric_limits<double>::infinity();
      cell[d + j] = -std::numeric_limits<double>::infinity();
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < d; ++j) {
        cell[j] = std::min(cell[j], points_[r * d + j]);
        cell[d + j] = std::max(cell[d + j], points_[r * d + j]);
      }
    std::vector<double> other_points(n * d);
    std::vector<int64_t> other_index(n);
    nodes_.push_back({0, n, -1});
    std::vector<int64_t> level{0}, next;
    std::vector<double> sample;
    while (!level.empty()) {
      next.clear();
      for (const int64_t id : level) {
        const int64_t begin = nodes_[id].begin, end = nodes_[id].end;
        if (end - begin <= leaf_size) {  // a leaf: its rows move over unchanged
          std::copy(&points_[begin * d], &points_[end * d], &other_points[begin * d]);
          std::copy(&index_[begin], &index_[end], &other_index[begin]);
          continue;
        }
        int64_t axis = 0;
        double widest = -1.0;
        for (int64_t j = 0; j < d; ++j) {
          const double width = cell[id * 2 * d + d + j] - cell[id * 2 * d + j];
          if (width > widest) widest = width, axis = j;
        }
        const int64_t count = end - begin;
        const int64_t step = (count + 30) / 31;  // at most 31 keys
        sample.clear();
        for (int64_t r = begin; r < end; r += step) sample.push_back(points_[r * d + axis]);
        std::nth_element(sample.begin(), sample.begin() + sample.size() / 2, sample.end());
        const double split = sample[sample.size() / 2];
        int64_t front = begin, back = end;
        for (int64_t r = begin; r < end; ++r) {
          const double* src = &points_[r * d];
          const bool left = src[axis] < split;
          const int64_t to = left ? front : back - 1;
          for (int64_t j = 0; j < d; ++j) other_points[to * d + j] = src[j];
          other_index[to] = index_[r];
          front += left;
          back -= !left;
        }
        int64_t mid = front;
        bool cut = true;
        if (mid - begin < count / 8 || end - mid < count / 8) {  // many ties at the split: halve by position
          std::copy(&points_[begin * d], &points_[end * d], &other_points[begin * d]);
          std::copy(&index_[begin], &index_[end], &other_index[begin]);
          mid = begin + count / 2;
          cut = false;
        }
        const int64_t left = static_cast<int64_t>(nodes_.size());
        nodes_[id].left = left;
        nodes_.push_back({begin, mid, -1});
        nodes_.push_back({mid, end, -1});
        for (int child = 0; child < 2; ++child)
          for (int64_t j = 0; j < 2 * d; ++j) cell.push_back(cell[id * 2 * d + j]);
        exact_.push_back(exact_[id] && cut);
        exact_.push_back(exact_[id] && cut);
        if (cut) {
          cell[left * 2 * d + d + axis] = split;
          cell[(left + 1) * 2 * d + axis] = split;
        }
        next.push_back(left);
        next.push_back(left + 1);
      }
      points_.swap(other_points);
      index_.swap(other_index);
      level.swap(next);
    }
    parent_.assign(nodes_.size(), -1);
    leaf_of_.resize(n);
    for (int64_t id = 0; id < static_cast<int64_t>(nodes_.size()); ++id) {
      const Node& node = nodes_[id];
      if (node.left >= 0) {
        parent_[node.left] = parent_[node.left + 1] = id;
      } else {
        for (int64_t r = node.begin; r < node.end; ++r) leaf_of_[r] = id;
      }
    }
    // Tight boxes (lo[0..d), hi[0..d) per node, siblings adjacent), children before parents
    // (children always have the larger ids).
    const int64_t count = static_cast<int64_t>(nodes_.size());
    box_.resize(count * 2 * d);
    for (int64_t id = count - 1; id >= 0; --id) {
      const Node& node = nodes_[id];
      double* lo = &box_[id * 2 * d];
      double* hi = lo + d;
      for (int64_t j = 0; j < d; ++j) {
        lo[j] = std::numeric_limits<double>::infinity();
        hi[j] = -std::numeric_limits<double>::infinity();
      }
      if (node.left < 0) {
        for (int64_t r = node.begin; r < node.end; ++r)
          for (int64_t j = 0; j < d; ++j) {
            lo[j] = std::min(lo[j], points_[r * d + j]);
            hi[j] = std::max(hi[j], points_[r * d + j]);
          }
      } else {
        const double* a = &box_[node.left * 2 * d];
        const double* b = a + 2 * d;
        for (int64_t j = 0; j < d; ++j) {
          lo[j] = std::min(a[j], b[j]);
          hi[j] = std::max(a[d + j], b[d + j]);
        }
      }
    }
  }

  int64_t size() const { return n_; }
  int64_t dim() const { return dim_; }
  const double* points() const { return points_.data(); }
  /// Original row of the point stored at tree row r.
  const std::vector<int64_t>& index() const { return index_; }

  /// Squared distance from q to node id's box (0 when q lies inside it).
  double box_distance2(const double* q, int64_t id) const {
    const int64_t d = dim_;
    const double* lo = &box_[id * 2 * d];
    const double* hi = lo + d;
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      // Whether q lies below, inside or above the box is unpredictable, so no branches (compilers
      // keep them for std::max): relu(t) = (t + |t|) / 2 is exact, and at most one side is > 0.
      const double below = lo[j] - q[j], above = q[j] - hi[j];
      const double gap = 0.5 * ((below + std::abs(below)) + (above + std::abs(above)));
      s += gap * gap;
    }
    return s;
  }

  /// Leaf holding tree row r.
  int64_t leaf_of(int64_t r) const { return leaf_of_[r]; }

  /// The k smallest strictly positive squared distances from q to the tree's points, ascending, in
  /// best[0..k) (+inf where fewer exist); returns the number of points at squared distance 0.
  ///
  /// `start` is a leaf to begin with (-1: none, search from the root). From a leaf the search
  /// climbs to the root and searches each sibling subtree on the way that is not pruned: the leaf
  /// and those siblings cover the tree, so the result is exact for any start, and a start near q
  /// (q's own leaf, or the previous nearby query's nearest leaf) saves the descent and its
  /// mispredicted branches. `nearest` receives the leaf of the nearest positive-distance point (-1
  /// when there is none and the search began at the root).
  ///
  /// K > 0 fixes k = K at compile time, so the list lives in registers during a leaf scan; K == 0
  /// reads k at run time.
  template <int K = 0>
  int64_t search(const double* q, int64_t k, double* best, int64_t start, int64_t& nearest) const {
    for (int64_t i = 0; i < k; ++i) best[i] = std::numeric_limits<double>::infinity();
    Query query{q, k, best, 0, start};  // nearest stays -1 ("from the root") if nothing is found
    if (start < 0) {
      visit<K>(0, query);
    } else {
      scan<K>(start, query);
      for (int64_t id = start; id != 0; id = parent_[id]) {
        if (exact_[id] && ball_inside_cell(q, best[k - 1], id)) break;
        const int64_t sibling = (id & 1) ? id + 1 : id - 1;  // siblings are (odd, odd + 1)
        if (box_distance2(q, sibling) < best[k - 1]) visit<K>(sibling, query);
      }
    }
    nearest = query.nearest;
    return query.zeros;
  }

 private:
  /// Whether the ball around q of squared radius r2 lies inside node id's cell, so that no point
  /// outside the node is closer than the k-th distance (the split puts keys < split left and keys
  /// >= split right, so a point beyond a cell face is at least as far as the face). Only for
  /// `exact_` nodes: every split above them cut the cell (no tie fallback). The margin covers the
  /// rounding of the face distances, so the answer errs only towards "no".
  bool ball_inside_cell(const double* q, double r2, int64_t id) const {
    const int64_t d = dim_;
    const double* lo = &cell_[id * 2 * d];
    const double* hi = lo + d;
    double room = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < d; ++j) room = min_of(room, min_of(q[j] - lo[j], hi[j] - q[j]));
    return room >= 0.0 && room * room >= r2 * (1.0 + 1e-9);
  }

  struct Query {
    const double* q;
    int64_t k;
    double* best;
    int64_t zeros;
    int64_t nearest;
  };

  template <int K>
  void scan(int64_t id, Query& query) const {
    const Node& node = nodes_[id];
    const int64_t d = dim_;
    const double* q = query.q;
    const double* p = &points_[node.begin * d];
    // The list in registers when K is known (a local array, fully unrolled), else in memory.
    constexpr int64_t kLocal = K > 0 ? K : 1;
    double local[kLocal];
    double* best = K > 0 ? local : query.best;
    const int64_t k = K > 0 ? K : query.k;
    if constexpr (K > 0)
      for (int64_t i = 0; i < K; ++i) local[i] = query.best[i];
    for (int64_t r = node.begin; r < node.end; ++r, p += d) {
      double s = 0.0;
      for (int64_t j = 0; j < d; ++j) {
        const double diff = p[j] - q[j];
        s += diff * diff;
      }
      // Branch free: whether a point enters the list, and where, is data dependent. Inserting
      // into the sorted list as b[i] = min(b[i], max(b[i - 1], s)), from the top down, leaves it
      // unchanged when s >= b[k - 1]. A point at distance 0 is counted and never inserted.
      query.zeros += (s == 0.0);
      if (s == 0.0) s = std::numeric_limits<double>::infinity();  // rare, predictable
      query.nearest = s < best[0] ? id : query.nearest;
      for (int64_t i = k - 1; i > 0; --i) best[i] = min_of(best[i], max_of(best[i - 1], s));
      best[0] = min_of(best[0], s);
    }
    if constexpr (K > 0)
      for (int64_t i = 0; i < K; ++i) query.best[i] = local[i];
  }

  template <int K>
  void visit(int64_t id, Query& query) const {
    const Node& node = nodes_[id];
    if (node.left < 0) {
      scan<K>(id, query);
      return;
    }
    const int64_t left = node.left;
    const double dl = box_distance2(query.q, left), dr = box_distance2(query.q, left + 1);
    // Nearer child first, chosen without a branch (a data-dependent branch here mispredicts half
    // the time). Strict comparisons: a node at exactly the k-th distance cannot change it.
    const bool right_first = dr < dl;
    const int64_t first = left + right_first, second = left + !right_first;
    const double distance[2] = {dl, dr};  // selected by index: compilers branch on a ?: here
    const double d_first = distance[right_first], d_second = distance[!right_first];
    if (d_first < query.best[query.k - 1]) visit<K>(first, query);
    if (d_second < query.best[query.k - 1]) visit<K>(second, query);
  }

  int64_t n_, dim_;
  std::vector<double> points_;
  std::vector<int64_t> index_;
  std::vector<Node> nodes_;
  std::vector<double> box_;
  std::vector<int64_t> parent_, leaf_of_;
  std::vector<double> cell_;  // per node: lo[0..d), hi[0..d) of its cell
  std::vector<char> exact_;   // every split above this node cut the cell
};

}  // namespace pyvi::knn
