// An exact k-d tree for small-k nearest-neighbour distances, written for the k-NN KL estimator.
//
// Layout: the points are copied once, in tree order, into one contiguous row-major buffer, so a
// leaf (<= leaf_size points) is a contiguous block and a query that walks nearby leaves walks
// nearby memory. Nodes keep their tight bounding box for pruning. The build splits each node at
// the median or mean of a sample of its cell's widest coordinate with a branch-free partition that
// moves whole rows, so it streams through memory (at the exact median key where that leaves a side
// with less than an eighth of the rows); the tree is about balanced, depth about log2(n / leaf_size).
// Nodes of more than kSubtree points are split level by level; the subtrees below are built depth
// first, each within a core's cache and independent of the others, so callers can share them out
// over threads (knn_kl.hpp builds the subtrees of both trees in one parallel loop).
//
// Search: from a leaf near the query (its own leaf, or where the previous, nearby query found its
// nearest point), climbing towards the root and searching each sibling subtree that the squared
// box distance does not prune, depth first, nearer child first; the climb stops once the k-NN ball
// lies inside the current node's cell. Only squared distances are compared, and the hot loops are
// branch free where the data would make branches unpredictable (box distances, child order, the
// sorted insertion, leaf_scan.hpp), which is what a 2-D search spends its time on otherwise (2-D
// with k <= 8 searches a leaf's points together instead: group_search.hpp). The search keeps the
// k smallest *strictly positive* squared distances in a sorted array (k is small) and counts the
// points at distance exactly 0 on the side: that is what the estimator's duplicate rule needs
// (knn_kl.hpp). A node whose box holds the query has box distance 0 < any kept distance, so it is
// never pruned and the zero count is exact.
//
// Copies: a node of more than leaf_size points that are all copies of one point (a stuck chain, a
// long run of HMC rejections) becomes one *uniform* leaf, however many points it holds, and a scan
// of it computes one distance (leaf_scan.hpp's merge_uniform). Without it such a node was split
// down to leaf_size, and every query among n copies scanned all of them: quadratic in the copies. Uniform nodes are found only where the split already fails on ties (all their keys
// are equal, so a split always fails there), so distinct points cost nothing extra.
//
// D > 0 fixes the dimension at compile time (unrolled distance loops for d = 1, 2, 3); D == 0 reads
// it at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "leaf_scan.hpp"

namespace pyvi::knn {

/// Where the trees' large buffers come from: buffers given back are kept for the next call (best
/// fit, up to kCacheBytes in all) instead of returned to the system, because a fresh buffer costs a
/// page fault per 4 KiB page on first touch, about a fifth of a 1e5-point estimate. Bigger
/// problems go to malloc as usual. Thread safe; never destroyed (nothing to do at exit).
class BufferCache {
 public:
  static constexpr size_t kCacheBytes = size_t{32} << 20;

  static BufferCache& instance() {
    static BufferCache* cache = new BufferCache();
    return *cache;
  }

  /// A block of at least `bytes` (and at most twice that when it comes from the cache), and its size.
  std::pair<void*, size_t> take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t best = blocks_.size();
      for (size_t i = 0; i < blocks_.size(); ++i)
        if (blocks_[i].second >= bytes && blocks_[i].second <= 2 * bytes &&
            (best == blocks_.size() || blocks_[i].second < blocks_[best].second))
          best = i;
      if (best < blocks_.size()) {
        const std::pair<void*, size_t> block = blocks_[best];
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(best));
        total_ -= block.second;
        return block;
      }
    }
    void* data = std::malloc(bytes);
    if (data == nullptr) throw std::bad_alloc();
    return {data, bytes};
  }

  void give(void* data, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (total_ + bytes <= kCacheBytes) {
        blocks_.emplace_back(data, bytes);
        total_ += bytes;
        return;
      }
    }
    std::free(data);
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<void*, size_t>> blocks_;
  size_t total_ = 0;
};

/// An uninitialised array of trivial T from BufferCache, given back on release.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }
  void reset(int64_t count) {
    release();
    const std::pair<void*, size_t> block = BufferCache::instance().take(static_cast<size_t>(count) * sizeof(T));
    data_ = static_cast<T*>(block.first);
    bytes_ = block.second;
  }
  void release() {
    if (data_ != nullptr) BufferCache::instance().give(data_, bytes_);
    data_ = nullptr;
  }
  T* get() const { return data_; }
  T& operator[](int64_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  size_t bytes_ = 0;
};

/// (max(below, 0) + max(above, 0))^2: one axis's term of a squared distance to a box, from the
/// signed distances below its low and above its high side (at most one is > 0 for valid boxes).
/// Whether a point lies below, inside or above is unpredictable, so no branches (compilers keep
/// them for std::max): relu(t) = (t + |t|) / 2 is exact.
inline double squared_gap(double below, double above) {
  const double gap = 0.5 * ((below + std::abs(below)) + (above + std::abs(above)));
  return gap * gap;
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
    int64_t left;        // first child (the second is left + 1); kLeaf or kUniformLeaf for a leaf
  };
  static constexpr int64_t kLeaf = -1;
  /// A leaf of more than leaf_size points, all copies of one point (header).
  static constexpr int64_t kUniformLeaf = -2;

  /// Copies the n x dim row-major `points`, each value times 2^-exponent (correctly rounded, so the
  /// same as numpy.ldexp), and builds the top of the tree (n >= 1). The tree is complete after
  /// build_subtree(f) for every f < subtrees() (any order, any threads) and then finish();
  /// build() does all three on the calling thread.
  ///
  /// Why in three steps: the top levels split nodes of more than kSubtree points level by level,
  /// streaming through the whole array once per level; below that each subtree fits in a core's
  /// L2 cache and is built depth first on its own (so a build does not stream the whole array
  /// once per level, and the subtrees of both trees are independent work items for the threads).
  /// Every node is split the same way whichever step splits it, and node ids do not depend on the
  /// order in which subtrees are built, so neither does the tree.
  KDTree(const double* points, int64_t n, int64_t dim, int exponent, int64_t leaf_size)
      : n_(n), dim_(Dimension<D>::value(dim)), leaf_size_(std::max<int64_t>(leaf_size, 1)) {
    const int64_t d = dims();
    buffer_[0].reset(n * d);
    buffer_[1].reset(n * d);
    index_buffer_[0].reset(n);
    index_buffer_[1].reset(n);
    double* own = buffer_[0].get();
    int64_t* index = index_buffer_[0].get();
    cell_.assign(2 * d, 0.0);
    for (int64_t j = 0; j < d; ++j) {
      cell_[j] = std::numeric_limits<double>::infinity();
      cell_[d + j] = -std::numeric_limits<double>::infinity();
    }
    const bool plain = std::abs(exponent) < 1000;  // 2^-exponent is a normal double: one exact multiply
    const double scale = std::ldexp(1.0, plain ? -exponent : 0);
    for (int64_t r = 0; r < n; ++r) {
      index[r] = r;
      for (int64_t j = 0; j < d; ++j) {
        const double v = plain ? points[r * d + j] * scale : std::ldexp(points[r * d + j], -exponent);
        own[r * d + j] = v;
        cell_[j] = min_of(cell_[j], v);
        cell_[d + j] = max_of(cell_[d + j], v);
      }
    }
    // Top levels, breadth first: each node of more than kSubtree points is partitioned from one
    // buffer into the other; a node of at most kSubtree points becomes a subtree root, its rows
    // left in the buffer of its level (buffer level % 2).
    const int64_t subtree = std::max(kSubtree, leaf_size_);
    nodes_.push_back({0, n, kLeaf});
    exact_.assign(1, 1);
    std::vector<int64_t> level{0}, next;
    for (int parity = 0; !level.empty(); parity ^= 1) {
      next.clear();
      for (const int64_t id : level) {
        const int64_t begin = nodes_[id].begin, end = nodes_[id].end;
        if (end - begin <= subtree) {
          frontier_.push_back({id, parity});
          continue;
        }
        const Split cut = split_rows(buffer_[parity].get(), index_buffer_[parity].get(),
                                     buffer_[!parity].get(), index_buffer_[!parity].get(), begin, end,
                                     &cell_[id * 2 * d], true);
        if (cut.uniform) {  // a subtree root: grow() makes it a uniform leaf
          frontier_.push_back({id, parity});
          continue;
        }
        const int64_t left = static_cast<int64_t>(nodes_.size());
        nodes_[id].left = left;
        nodes_.push_back({begin, cut.mid, kLeaf});
        nodes_.push_back({cut.mid, end, kLeaf});
        cell_.resize((left + 2) * 2 * d);
        child_cells(&cell_[id * 2 * d], cut, &cell_[left * 2 * d]);
        exact_.push_back(exact_[id] && cut.cut);
        exact_.push_back(exact_[id] && cut.cut);
        next.push_back(left);
        next.push_back(left + 1);
      }
      level.swap(next);
    }
    parts_.resize(frontier_.size());
  }

  /// Top nodes whose subtrees are still to build.
  int64_t subtrees() const { return static_cast<int64_t>(frontier_.size()); }

  /// Builds subtree f depth first (thread safe for distinct f: it touches only its own rows).
  void build_subtree(int64_t f) {
    const int64_t d = dims();
    const int64_t root = frontier_[f].id;
    Part& part = parts_[f];
    part.nodes.push_back({nodes_[root].begin, nodes_[root].end, kLeaf});
    part.cell.assign(&cell_[root * 2 * d], &cell_[(root + 1) * 2 * d]);
    part.exact.push_back(exact_[root]);
    part.box.resize(2 * d);
    grow(part, 0, frontier_[f].parity);
  }

  /// Joins the subtrees to the top (node ids: the top nodes, then each subtree's nodes in
  /// frontier order) and computes the top nodes' tight boxes.
  void finish() {
    const int64_t d = dims();
    const int64_t top = static_cast<int64_t>(nodes_.size());  // odd: the root and pairs
    int64_t total = top;
    for (const Part& part : parts_) total += static_cast<int64_t>(part.nodes.size()) - 1;
    nodes_.resize(total);
    cell_.resize(total * 2 * d);
    exact_.resize(total);
    box_.resize(total * 2 * d);
    int64_t base = top;  // global id of a part's local node 1 (always odd: pairs stay (odd, odd + 1))
    for (size_t f = 0; f < parts_.size(); ++f) {
      const Part& part = parts_[f];
      const int64_t root = frontier_[f].id;
      const auto global = [&](int64_t l) { return l == 0 ? root : base + l - 1; };
      for (int64_t l = 0; l < static_cast<int64_t>(part.nodes.size()); ++l) {
        const int64_t id = global(l);
        Node node = part.nodes[l];
        if (node.left >= 0) node.left = global(node.left);
        nodes_[id] = node;
        std::copy(&part.cell[l * 2 * d], &part.cell[(l + 1) * 2 * d], &cell_[id * 2 * d]);
        std::copy(&part.box[l * 2 * d], &part.box[(l + 1) * 2 * d], &box_[id * 2 * d]);
        exact_[id] = part.exact[l];
      }
      base += static_cast<int64_t>(part.nodes.size()) - 1;
    }
    parts_.clear();
    parts_.shrink_to_fit();
    // Boxes of the split top nodes from their children (children have the larger ids; a subtree
    // root's box came with its part).
    std::vector<char> subtree_root(top, 0);
    for (const Frontier& f : frontier_) subtree_root[f.id] = 1;
    for (int64_t id = top - 1; id >= 0; --id) {
      if (subtree_root[id]) continue;
      const double* a = &box_[nodes_[id].left * 2 * d];
      const double* b = a + 2 * d;
      for (int64_t j = 0; j < d; ++j) {
        box_[id * 2 * d + j] = min_of(a[j], b[j]);
        box_[id * 2 * d + d + j] = max_of(a[d + j], b[d + j]);
      }
    }
    parent_.assign(total, -1);
    for (int64_t id = 0; id < total; ++id)
      if (nodes_[id].left >= 0) parent_[nodes_[id].left] = parent_[nodes_[id].left + 1] = id;
    frontier_.clear();
    buffer_[1].release();
    index_buffer_[1].release();
  }

  /// The whole build on the calling thread.
  void build() {
    for (int64_t f = 0; f < subtrees(); ++f) build_subtree(f);
    finish();
  }

  int64_t size() const { return n_; }
  int64_t dim() const { return dims(); }
  const double* points() const { return buffer_[0].get(); }
  /// Original row of the point stored at tree row r (index()[r]).
  const int64_t* index() const { return index_buffer_[0].get(); }

  /// Squared distance from q to node id's box (0 when q lies inside it).
  double box_distance2(const double* q, int64_t id) const {
    const int64_t d = dims();
    const double* lo = &box_[id * 2 * d];
    const double* hi = lo + d;
    double s = 0.0;
    for (int64_t j = 0; j < d; ++j) s += squared_gap(lo[j] - q[j], q[j] - hi[j]);
    return s;
  }

  /// Leaf holding tree row r (a descent from the root: callers walking rows in order call it once
  /// per leaf, when r reaches the previous leaf's end()).
  int64_t leaf_of(int64_t r) const {
    int64_t id = 0;
    while (nodes_[id].left >= 0) id = nodes_[id].left + (r >= nodes_[nodes_[id].left].end);
    return id;
  }
  /// One past node id's last tree row.
  int64_t end(int64_t id) const { return nodes_[id].end; }
  /// Node id's first tree row.
  int64_t begin(int64_t id) const { return nodes_[id].begin; }
  /// Node id's first child (the second is left(id) + 1), < 0 for a leaf.
  int64_t left(int64_t id) const { return nodes_[id].left; }
  /// Whether node id is a uniform leaf: more than leaf_size points, all copies of one point.
  bool uniform(int64_t id) const { return nodes_[id].left == kUniformLeaf; }
  /// Node id's tight bounding box: lo[0..d), then hi[0..d).
  const double* box(int64_t id) const { return &box_[id * 2 * dims()]; }

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
  /// `exact_` nodes: every split above them cut the cell (all do; a uniform leaf is not split). The margin covers the
  /// rounding of the face distances, so the answer errs only towards "no".
  bool ball_inside_cell(const double* q, double r2, int64_t id) const {
    const int64_t d = dims();
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
    const int64_t d = dims();
    const double* p = &buffer_[0][node.begin * d];
    // The list in registers when K is known (a local array, fully unrolled), else in memory.
    constexpr int64_t kLocal = K > 0 ? K : 1;
    double local[kLocal];
    double* best = K > 0 ? local : query.best;
    if constexpr (K > 0)
      for (int64_t i = 0; i < K; ++i) local[i] = query.best[i];
    const double nearest_before = best[0];
    query.zeros += node.left == kUniformLeaf ? merge_uniform<K>(p, node.end - node.begin, d, query.q, best, query.k)
                                             : merge_each<K>(p, node.end - node.begin, d, query.q, best, query.k);
    // The leaf holds the nearest point so far iff the leaf lowered best[0] (leaf_scan.hpp).
    query.nearest = best[0] < nearest_before ? id : query.nearest;
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

  static constexpr int64_t kSubtree = 8192;  // points: a subtree's two buffers fit in L2

  struct Split {
    int64_t mid;   // first row of the right child
    int64_t axis;  // the cut axis
    double split;  // keys < split went left, keys >= split right (when cut)
    bool cut;      // false: not split (a uniform leaf)
    bool uniform;  // all rows are copies of one point: not split at all (a uniform leaf)
  };

  /// Partitions rows [begin, end) of (src, src_index) into (dst, dst_index) around the median
  /// (`median`) or the mean of a sample of keys along the widest side of the node's cell (lo[0..d),
  /// hi[0..d)). Branch free: the side only selects the destination, so no mispredicted branch per
  /// point as in a quickselect. Which split is chosen never changes results (the search prunes
  /// with tight boxes), only speed. The top levels take the median (skewed data, as in the tails
  /// of a sample, would unbalance a mean split); the subtrees, where the many small nodes made
  /// nth_element half the build and the data is locally near uniform, the mean (1e5 and 1e6
  /// points, Gaussian and banana-shaped: build ~30% faster, searches no slower).
  Split split_rows(const double* src, const int64_t* src_index, double* dst, int64_t* dst_index,
                   int64_t begin, int64_t end, const double* cell, bool median) const {
    const int64_t d = dims();
    int64_t axis = 0;
    double widest = -1.0;
    for (int64_t j = 0; j < d; ++j) {
      const double width = cell[d + j] - cell[j];
      if (width > widest) widest = width, axis = j;
    }
    const int64_t count = end - begin;
    const int64_t step = (count + 30) / 31;  // at most 31 keys
    double sample[31] = {};
    int64_t keys = 0;
    for (int64_t r = begin; r < end; r += step) sample[keys++] = src[r * d + axis];
    double split;
    if (median) {
      std::nth_element(sample, sample + keys / 2, sample + keys);
      split = sample[keys / 2];
    } else {
      double sum = 0.0;
      for (int64_t i = 0; i < keys; ++i) sum += sample[i];
      split = sum / static_cast<double>(keys);
    }
    int64_t front = begin, back = end;
    for (int64_t r = begin; r < end; ++r) {
      const double* row = &src[r * d];
      const bool left = row[axis] < split;
      const int64_t to = left ? front : back - 1;
      for (int64_t j = 0; j < d; ++j) dst[to * d + j] = row[j];
      dst_index[to] = src_index[r];
      front += left;
      back -= !left;
    }
    // Many ties at the split, or a skewed sample (one key far beyond the others moves the mean
    // past most of them, as in inputs spanning 1e-300 to 1e300), or a side left empty (which small
    // nodes would otherwise split forever when all their keys are equal): a uniform leaf if every
    // row is a copy of the first (rows of equal coordinates: distance 0), else halve at the exact
    // median key, as pyvi._numba.knn does. (Halving by position instead left children whose boxes
    // overlap: on such skewed input the search visited most of the tree, 80x slower than Numba's.)
    // Keys equal to the median may fall on both sides; the cells still hold their rows (keys <= split
    // left, >= split right), and a point on a face is as far as the face (ball_inside_cell).
    const int64_t least = std::max<int64_t>(count / 8, 1);
    if (front - begin < least || end - front < least) {
      if (all_copies(src, begin, end)) return {begin, axis, split, false, true};
      std::vector<std::pair<double, int64_t>> order(count);
      for (int64_t r = begin; r < end; ++r) order[r - begin] = {src[r * d + axis], r};
      const auto by_key = [](const std::pair<double, int64_t>& a, const std::pair<double, int64_t>& b) {
        return a.first < b.first;
      };
      std::nth_element(order.begin(), order.begin() + count / 2, order.end(), by_key);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t r = order[i].second;
        std::copy(&src[r * d], &src[(r + 1) * d], &dst[(begin + i) * d]);
        dst_index[begin + i] = src_index[r];
      }
      return {begin + count / 2, axis, order[count / 2].first, true, false};
    }
    return {front, axis, split, true, false};
  }

  /// Whether rows [begin, end) of the row-major `rows` all equal row begin (==, so -0.0 and 0.0
  /// agree, as their distance 0 says).
  bool all_copies(const double* rows, int64_t begin, int64_t end) const {
    const int64_t d = dims();
    const double* first = &rows[begin * d];
    for (int64_t r = begin + 1; r < end; ++r)
      for (int64_t j = 0; j < d; ++j)
        if (rows[r * d + j] != first[j]) return false;
    return true;
  }

  /// The children's cells (2 x (lo, hi)) from the parent's: cut at the split when it cut.
  void child_cells(const double* parent, const Split& cut, double* children) const {
    const int64_t d = dims();
    std::copy(parent, parent + 2 * d, children);
    std::copy(parent, parent + 2 * d, children + 2 * d);
    if (cut.cut) {
      children[d + cut.axis] = cut.split;
      children[2 * d + cut.axis] = cut.split;
    }
  }

  /// A subtree built on its own: local node 0 is its root (a top node), the others are numbered
  /// depth first in sibling pairs (1, 2), (3, 4), ...; children point at local ids.
  struct Part {
    std::vector<Node> nodes;
    std::vector<double> cell, box;
    std::vector<char> exact;
  };
  struct Frontier {
    int64_t id;  // top node id
    int parity;  // the buffer its rows are in
  };

  /// Splits local node l of `part` (rows in buffer `parity`) down to leaves, depth first, and
  /// computes the tight boxes bottom up. Leaves end in buffer 0.
  void grow(Part& part, int64_t l, int parity) {
    const int64_t d = dims();
    const int64_t begin = part.nodes[l].begin, end = part.nodes[l].end;
    Split cut{};
    if (end - begin > leaf_size_) {
      cut = split_rows(buffer_[parity].get(), index_buffer_[parity].get(), buffer_[!parity].get(),
                       index_buffer_[!parity].get(), begin, end, &part.cell[l * 2 * d], false);
      if (cut.uniform) part.nodes[l].left = kUniformLeaf;
    }
    if (end - begin <= leaf_size_ || cut.uniform) {
      if (parity) {
        std::copy(&buffer_[1][begin * d], &buffer_[1][end * d], &buffer_[0][begin * d]);
        std::copy(&index_buffer_[1][begin], &index_buffer_[1][end], &index_buffer_[0][begin]);
      }
      double* lo = &part.box[l * 2 * d];
      double* hi = lo + d;
      for (int64_t j = 0; j < d; ++j) {
        lo[j] = std::numeric_limits<double>::infinity();
        hi[j] = -std::numeric_limits<double>::infinity();
      }
      const double* p = &buffer_[0][0];
      for (int64_t r = begin; r < end; ++r)
        for (int64_t j = 0; j < d; ++j) {
          lo[j] = min_of(lo[j], p[r * d + j]);
          hi[j] = max_of(hi[j], p[r * d + j]);
        }
      return;
    }
    const int64_t left = static_cast<int64_t>(part.nodes.size());
    part.nodes[l].left = left;
    part.nodes.push_back({begin, cut.mid, kLeaf});
    part.nodes.push_back({cut.mid, end, kLeaf});
    part.cell.resize((left + 2) * 2 * d);
    part.box.resize((left + 2) * 2 * d);
    child_cells(&part.cell[l * 2 * d], cut, &part.cell[left * 2 * d]);
    const char exact = part.exact[l] && cut.cut;
    part.exact.push_back(exact);
    part.exact.push_back(exact);
    grow(part, left, !parity);
    grow(part, left + 1, !parity);
    const double* a = &part.box[left * 2 * d];
    const double* b = a + 2 * d;
    double* box = &part.box[l * 2 * d];
    for (int64_t j = 0; j < d; ++j) {
      box[j] = min_of(a[j], b[j]);
      box[d + j] = max_of(a[d + j], b[d + j]);
    }
  }

  /// The dimension, a compile-time constant when D > 0 (so the loops over coordinates unroll).
  int64_t dims() const { return D > 0 ? D : dim_; }

  int64_t n_, dim_, leaf_size_;
  // buffer_[0]: the points in tree order (row-major); buffer_[1]: the build's other buffer.
  Buffer<double> buffer_[2];
  Buffer<int64_t> index_buffer_[2];
  std::vector<Node> nodes_;
  std::vector<double> box_;
  std::vector<int64_t> parent_;
  std::vector<double> cell_;  // per node: lo[0..d), hi[0..d) of its cell
  std::vector<char> exact_;   // every split above this node cut the cell
  std::vector<Frontier> frontier_;
  std::vector<Part> parts_;
};

}  // namespace pyvi::knn
