// An exact k-d tree for small-k nearest-neighbour distances, written for the k-NN KL estimator.
//
// Layout: the points are copied once, in tree order, into one contiguous row-major buffer, so a
// leaf (<= leaf_size points) is a contiguous block and a query that walks nearby leaves walks
// nearby memory. Nodes keep their tight bounding box for pruning. The build splits each node at
// the median of its widest coordinate (quickselect on the rows themselves, so the build streams
// through memory instead of chasing an index permutation); the tree is balanced, depth log2(n/leaf).
//
// Search: depth first, nearer child first, pruned by the squared box distance; only squared
// distances are compared. The search keeps the k smallest *strictly positive* squared distances in
// a sorted array (k is small) and counts the points at distance exactly 0 on the side: that is what
// the estimator's duplicate rule needs (knn_kl.hpp). A node whose box holds the query has box
// distance 0 < any kept distance, so it is never pruned and the zero count is exact.
//
// D > 0 fixes the dimension at compile time (unrolled distance loops for d = 1, 2, 3); D == 0 reads
// it at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace pyvi::knn {

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
    if (std::abs(exponent) < 1000) {  // 2^-exponent is a normal double: one exact multiply
      const double scale = std::ldexp(1.0, -exponent);
      for (int64_t i = 0; i < n * d; ++i) points_[i] = points[i] * scale;
    } else {
      for (int64_t i = 0; i < n * d; ++i) points_[i] = std::ldexp(points[i], -exponent);
    }
    for (int64_t i = 0; i < n; ++i) index_[i] = i;
    nodes_.reserve(static_cast<size_t>(4 * (n / std::max<int64_t>(leaf_size, 1) + 1)));
    // Split each node at the median of the widest side of its *cell* (the parent's cell cut at the
    // parent's median): no pass over the points per node. Tight boxes come after, bottom up.
    std::vector<double> cell_lo(d, std::numeric_limits<double>::infinity());
    std::vector<double> cell_hi(d, -std::numeric_limits<double>::infinity());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < d; ++j) {
        cell_lo[j] = std::min(cell_lo[j], points_[r * d + j]);
        cell_hi[j] = std::max(cell_hi[j], points_[r * d + j]);
      }
    nodes_.push_back({0, n, -1});
    std::vector<int64_t> pending{0};
    while (!pending.empty()) {
      const int64_t id = pending.back();
      pending.pop_back();
      const int64_t begin = nodes_[id].begin, end = nodes_[id].end;
      if (end - begin <= leaf_size) continue;
      int64_t axis = 0;
      double widest = -1.0;
      for (int64_t j = 0; j < d; ++j) {
        const double width = cell_hi[id * d + j] - cell_lo[id * d + j];
        if (width > widest) widest = width, axis = j;
      }
      const int64_t mid = begin + (end - begin) / 2;
      select(begin, end, mid, axis);
      const double split = points_[mid * d + axis];
      const int64_t left = static_cast<int64_t>(nodes_.size());
      nodes_[id].left = left;
      nodes_.push_back({begin, mid, -1});
      nodes_.push_back({mid, end, -1});
      for (int child = 0; child < 2; ++child) {
        for (int64_t j = 0; j < d; ++j) {
          cell_lo.push_back(cell_lo[id * d + j]);
          cell_hi.push_back(cell_hi[id * d + j]);
        }
      }
      cell_hi[left * d + axis] = split;
      cell_lo[(left + 1) * d + axis] = split;
      pending.push_back(left + 1);
      pending.push_back(left);
    }
    // Tight boxes, children before parents (children always have the larger ids).
    const int64_t count = static_cast<int64_t>(nodes_.size());
    lo_.assign(count * d, std::numeric_limits<double>::infinity());
    hi_.assign(count * d, -std::numeric_limits<double>::infinity());
    for (int64_t id = count - 1; id >= 0; --id) {
      const Node& node = nodes_[id];
      double* lo = &lo_[id * d];
      double* hi = &hi_[id * d];
      if (node.left < 0) {
        for (int64_t r = node.begin; r < node.end; ++r)
          for (int64_t j = 0; j < d; ++j) {
            lo[j] = std::min(lo[j], points_[r * d + j]);
            hi[j] = std::max(hi[j], points_[r * d + j]);
          }
      } else {
        for (int64_t j = 0; j < d; ++j) {
          lo[j] = std::min(lo_[node.left * d + j], lo_[(node.left + 1) * d + j]);
          hi[j] = std::max(hi_[node.left * d + j], hi_[(node.left + 1) * d + j]);
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
    const double* lo = &lo_[id * d];
    const double* hi = &hi_[id * d];
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double below = lo[j] - q[j], above = q[j] - hi[j];
      const double gap = below > 0.0 ? below : (above > 0.0 ? above : 0.0);
      s += gap * gap;
    }
    return s;
  }

  /// The k smallest strictly positive squared distances from q to the tree's points, ascending, in
  /// best[0..k) (+inf where fewer exist), and the number of points at squared distance 0.
  int64_t search(const double* q, int64_t k, double* best) const {
    for (int64_t i = 0; i < k; ++i) best[i] = std::numeric_limits<double>::infinity();
    int64_t zeros = 0;
    visit(0, q, k, best, zeros);
    return zeros;
  }

 private:
  void visit(int64_t id, const double* q, int64_t k, double* best, int64_t& zeros) const {
    const Node& node = nodes_[id];
    if (node.left < 0) {
      const int64_t d = dim_;
      const double* p = &points_[node.begin * d];
      for (int64_t r = node.begin; r < node.end; ++r, p += d) {
        double s = 0.0;
        for (int64_t j = 0; j < d; ++j) {
          const double diff = p[j] - q[j];
          s += diff * diff;
        }
        if (s < best[k - 1]) {
          if (s == 0.0) {
            ++zeros;
          } else {
            int64_t i = k - 1;
            for (; i > 0 && best[i - 1] > s; --i) best[i] = best[i - 1];
            best[i] = s;
          }
        }
      }
      return;
    }
    const int64_t left = node.left, right = node.left + 1;
    const double dl = box_distance2(q, left), dr = box_distance2(q, right);
    // Strict comparisons: a node at exactly the k-th distance cannot change the k-th distance.
    if (dl <= dr) {
      if (dl < best[k - 1]) visit(left, q, k, best, zeros);
      if (dr < best[k - 1]) visit(right, q, k, best, zeros);
    } else {
      if (dr < best[k - 1]) visit(right, q, k, best, zeros);
      if (dl < best[k - 1]) visit(left, q, k, best, zeros);
    }
  }

  double key(int64_t row, int64_t axis) const { return points_[row * dim_ + axis]; }

  void swap_rows(int64_t a, int64_t b) {
    const int64_t d = dim_;
    for (int64_t j = 0; j < d; ++j) std::swap(points_[a * d + j], points_[b * d + j]);
    std::swap(index_[a], index_[b]);
  }

  /// Quickselect (Hoare partition, median-of-three pivot) on rows [begin, end) by coordinate
  /// `axis`: afterwards row nth holds the value it would hold if sorted, smaller-or-equal rows
  /// before it and greater-or-equal after. Moves whole rows so the points stay contiguous.
  void select(int64_t begin, int64_t end, int64_t nth, int64_t axis) {
    while (end - begin > 1) {
      const double a = key(begin, axis), b = key(begin + (end - begin) / 2, axis), c = key(end - 1, axis);
      const double pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
      int64_t i = begin, j = end - 1;
      while (i <= j) {
        while (key(i, axis) < pivot) ++i;
        while (key(j, axis) > pivot) --j;
        if (i <= j) swap_rows(i++, j--);
      }
      if (nth <= j) end = j + 1;
      else if (nth >= i) begin = i;
      else return;  // rows strictly between j and i equal the pivot
    }
  }

  int64_t n_, dim_;
  std::vector<double> points_;
  std::vector<int64_t> index_;
  std::vector<Node> nodes_;
  std::vector<double> lo_, hi_;
};

}  // namespace pyvi::knn
