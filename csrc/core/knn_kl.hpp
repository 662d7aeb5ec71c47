// The k-NN estimator of KL(P || Q) of Wang, Kulkarni & Verdu (2009) from x ~ P (n x d) and
// y ~ Q (m x d), with the duplicate rule of pyvi.divergence ("leave all copies out"):
//
//   z_i   = #{j != i : x_j == x_i},   w_i = #{j : y_j == x_i}   (copies of x_i),
//   rho_i = k-th smallest distance from x_i to x without x_i's copies (z_i + 1 points removed),
//   nu_i  = k-th smallest distance from x_i to y without x_i's copies (w_i points removed),
//   D     = 1/n sum_i [d log(nu_i / rho_i) + log((m - w_i) / (n - 1 - z_i))],
//
// i.e. each point's term of eq. 5 computed against the samples with every copy of x_i left out, as
// eq. 5's n - 1 already leaves x_i itself out. Without duplicates this is eq. 5 exactly.
//
// x and y are scaled by one power of two so that squared distances cannot overflow (the estimate is
// scale free). Where the input's dynamic range is so large that squared distances would underflow
// (robust_search.hpp says when), the search compares robust_search.hpp's log distances instead:
// exact either way. Copies of one point cost one distance per leaf and one search (kdtree.hpp's uniform
// leaves; the queries of a uniform leaf of x are one query): O(n log n) however many copies.
// Queries run in x's tree order (nearby queries in a row: warm caches), in blocks over
// parallel_for_elastic (parallel.hpp); each query writes only its own slot, so results never
// depend on the thread count. In 2-D with k <= 8 the queries of each leaf of x's tree search
// together (group_search.hpp: the searches about 1.4x faster at k = 5, n = 1e5), with the same
// results.
//
// References:
//   Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
//   k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "group_search.hpp"
#include "kdtree.hpp"
#include "parallel.hpp"
#include "robust_search.hpp"

namespace pyvi::knn {

/// Per-point outputs, indexed by x's original row.
struct KnnOutputs {
  double* rho2;    // squared rho_i (scaled units; log rho_i from the robust search); +inf: fewer
                   // than k points of x differ from x_i
  double* nu2;     // squared nu_i (the same units; log nu_i); +inf: fewer than k points of y differ from x_i
  int64_t* copies_x;  // z_i
  int64_t* copies_y;  // w_i

  /// Row i's outputs from row `from`'s (a copy of the same point).
  void copy_row(int64_t i, int64_t from) const {
    rho2[i] = rho2[from];
    nu2[i] = nu2[from];
    copies_x[i] = copies_x[from];
    copies_y[i] = copies_y[from];
  }
  void copy_rho(int64_t i, int64_t from) const {
    rho2[i] = rho2[from];
    copies_x[i] = copies_x[from];
  }
  void copy_nu(int64_t i, int64_t from) const {
    nu2[i] = nu2[from];
    copies_y[i] = copies_y[from];
  }
};

/// Whether tree row r of x repeats row r - 1 (rows of a uniform leaf are copies of one point), so
/// that a query from it would repeat the previous one. `leaf` holds r; `first` is the first row
/// whose results the caller has (its block's first row: another thread may own the ones before).
template <int D>
bool repeats_previous(const KDTree<D>& tx, int64_t leaf, int64_t r, int64_t first) {
  return r > first && r > tx.begin(leaf) && tx.uniform(leaf);
}

/// Both passes over x's points in tree order: rho against x's own tree (from the query's leaf),
/// nu against y's tree (from where the previous query found its nearest point).
template <int D, int K>
void run_queries(const KDTree<D>& tx, const KDTree<D>& ty, int64_t k, int num_threads,
                 const KnnOutputs& out) {
  const int64_t n = tx.size(), d = tx.dim();
  const double* queries = tx.points();  // x in tree order
  const int64_t* original = tx.index();
  constexpr int64_t kBlock = 256;  // consecutive tree-order queries per work item
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // Items [0, blocks) search x's tree, [blocks, 2 blocks) y's: one parallel region (one barrier,
  // which matters when another process holds a core), and items are handed out in order, so the
  // threads still stream through one tree at a time.
  parallel_for_elastic(2 * blocks, num_threads, [&](int64_t item) {
    double best[K > 0 ? K : 1];
    std::vector<double> dynamic_best(K > 0 ? 0 : k);
    double* list = K > 0 ? best : dynamic_best.data();
    const bool own = item < blocks;
    const int64_t block = own ? item : item - blocks;
    const int64_t first = block * kBlock, end = std::min(n, (block + 1) * kBlock);
    int64_t leaf = -1, leaf_end = 0;  // x's leaf holding row r
    if (own) {
      int64_t nearest;
      for (int64_t r = first; r < end; ++r) {
        if (r >= leaf_end) leaf = tx.leaf_of(r), leaf_end = tx.end(leaf);  // each query from its own leaf
        const int64_t i = original[r];
        if (repeats_previous(tx, leaf, r, first)) {
          out.copy_rho(i, original[r - 1]);
          continue;
        }
        const int64_t zeros = tx.template search<K>(queries + r * d, k, list, leaf, nearest);
        out.rho2[i] = list[k - 1];
        out.copies_x[i] = zeros - 1;  // zeros counts x_i itself
      }
    } else {
      int64_t nearest = -1;  // the block's first query searches from the root, the next ones from
                             // the leaf where the previous (nearby, tree-order) query found its nearest
      for (int64_t r = first; r < end; ++r) {
        if (r >= leaf_end) leaf = tx.leaf_of(r), leaf_end = tx.end(leaf);
        const int64_t i = original[r];
        if (repeats_previous(tx, leaf, r, first)) {
          out.copy_nu(i, original[r - 1]);
          continue;
        }
        const int64_t zeros = ty.template search<K>(queries + r * d, k, list, nearest, nearest);
        out.nu2[i] = list[k - 1];
        out.copies_y[i] = zeros;
      }
    }
  });
}

/// 2-D, k = K: the same outputs as run_queries, searching for one leaf of x's tree at a time
/// (group_search.hpp), against x's tree (rho) and y's (nu).
template <int K>
void run_group_queries(const KDTree<2>& tx, const KDTree<2>& ty, int num_threads, const KnnOutputs& out) {
  using Search = GroupSearch2d<K>;
  struct Group {
    int64_t begin, end, leaf;  // tree rows [begin, end) of x, inside leaf's box
    int64_t copies_end;        // rows [end, copies_end) are copies of row begin (a uniform leaf)
  };
  // x's leaves in row order (depth first, left child first), cut into groups of <= kMaxGroup rows;
  // a uniform leaf is one group of one query, its other rows copies.
  std::vector<Group> groups;
  std::vector<int64_t> stack{0};
  while (!stack.empty()) {
    const int64_t id = stack.back();
    stack.pop_back();
    if (tx.left(id) >= 0) {
      stack.push_back(tx.left(id) + 1);
      stack.push_back(tx.left(id));
      continue;
    }
    if (tx.uniform(id)) {
      groups.push_back({tx.begin(id), tx.begin(id) + 1, id, tx.end(id)});
      continue;
    }
    for (int64_t r = tx.begin(id); r < tx.end(id); r += Search::kMaxGroup) {
      const int64_t end = std::min(tx.end(id), r + Search::kMaxGroup);
      groups.push_back({r, end, id, end});
    }
  }
  const double* queries = tx.points();
  const int64_t* original = tx.index();
  constexpr int64_t kBlock = 16;  // groups per work item (a few hundred queries)
  const int64_t num_groups = static_cast<int64_t>(groups.size());
  const int64_t blocks = (num_groups + kBlock - 1) / kBlock;
  // As in run_queries: items [0, blocks) search x's tree, the others y's, in one parallel region.
  parallel_for_elastic(2 * blocks, num_threads, [&](int64_t item) {
    const bool own = item < blocks;
    const int64_t block = own ? item : item - blocks;
    Search search(own ? tx : ty);
    double best[Search::kMaxGroup][K];
    int64_t zeros[Search::kMaxGroup];
    for (int64_t g = block * kBlock; g < std::min(num_groups, (block + 1) * kBlock); ++g) {
      const Group& group = groups[g];
      search.run(queries + 2 * group.begin, group.end - group.begin, tx.box(group.leaf), best, zeros);
      for (int64_t r = group.begin; r < group.end; ++r) {
        const int64_t i = original[r];
        if (own) {
          out.rho2[i] = best[r - group.begin][K - 1];
          out.copies_x[i] = zeros[r - group.begin] - 1;  // zeros counts x_i itself
        } else {
          out.nu2[i] = best[r - group.begin][K - 1];
          out.copies_y[i] = zeros[r - group.begin];
        }
      }
      for (int64_t r = group.end; r < group.copies_end; ++r)
        own ? out.copy_rho(original[r], original[group.begin]) : out.copy_nu(original[r], original[group.begin]);
    }
  });
}

/// The outputs for every point of x, from robust_search.hpp's log distances.
template <int D>
void run_robust_queries(const KDTree<D>& tx, const KDTree<D>& ty, int64_t k, int num_threads,
                        const KnnOutputs& out) {
  const int64_t n = tx.size(), d = tx.dim();
  const double* queries = tx.points();
  const int64_t* original = tx.index();
  constexpr int64_t kBlock = 256;
  const RobustSearch<D> in_x(tx), in_y(ty);
  parallel_for_elastic((n + kBlock - 1) / kBlock, num_threads, [&](int64_t block) {
    std::vector<double> list(k);
    const int64_t first = block * kBlock, end = std::min(n, (block + 1) * kBlock);
    int64_t leaf = -1, leaf_end = 0;
    for (int64_t r = first; r < end; ++r) {
      if (r >= leaf_end) leaf = tx.leaf_of(r), leaf_end = tx.end(leaf);
      const int64_t i = original[r];
      if (repeats_previous(tx, leaf, r, first)) {
        out.copy_row(i, original[r - 1]);
        continue;
      }
      out.copies_x[i] = in_x.search(queries + r * d, k, list.data()) - 1;  // counts x_i itself
      out.rho2[i] = list[k - 1];
      out.copies_y[i] = in_y.search(queries + r * d, k, list.data());
      out.nu2[i] = list[k - 1];
    }
  });
}

/// Fills `out` for every point of x (n x dim, scaled by 2^-exponent here) against x itself and y
/// (m x dim): squared distances, or with `robust` robust_search.hpp's log distances.
template <int D>
void knn_distances(const double* x, int64_t n, const double* y, int64_t m, int64_t dim, int exponent,
                   int64_t k, int64_t leaf_size, int num_threads, bool robust, const KnnOutputs& out) {
  // The two trees are independent: their tops are built side by side, then the cache-sized
  // subtrees of both are shared out over the threads, then each is joined up (kdtree.hpp).
  std::unique_ptr<KDTree<D>> trees[2];
  parallel_for_elastic(2, num_threads, [&](int64_t which) {
    trees[which] = which == 0 ? std::make_unique<KDTree<D>>(x, n, dim, exponent, leaf_size)
                              : std::make_unique<KDTree<D>>(y, m, dim, exponent, leaf_size);
  });
  const int64_t subtrees_x = trees[0]->subtrees();
  parallel_for_elastic(subtrees_x + trees[1]->subtrees(), num_threads, [&](int64_t f) {
    if (f < subtrees_x)
      trees[0]->build_subtree(f);
    else
      trees[1]->build_subtree(f - subtrees_x);
  });
  parallel_for_elastic(2, num_threads, [&](int64_t which) { trees[which]->finish(); });
  const KDTree<D>& tx = *trees[0];
  const KDTree<D>& ty = *trees[1];
  if (robust) return run_robust_queries(tx, ty, k, num_threads, out);
  if constexpr (D == 2) {
    switch (k) {  // 2-D, small k: the group search
      case 1: return run_group_queries<1>(tx, ty, num_threads, out);
      case 2: return run_group_queries<2>(tx, ty, num_threads, out);
      case 3: return run_group_queries<3>(tx, ty, num_threads, out);
      case 4: return run_group_queries<4>(tx, ty, num_threads, out);
      case 5: return run_group_queries<5>(tx, ty, num_threads, out);
      case 6: return run_group_queries<6>(tx, ty, num_threads, out);
      case 7: return run_group_queries<7>(tx, ty, num_threads, out);
      case 8: return run_group_queries<8>(tx, ty, num_threads, out);
      default: break;
    }
  }
  switch (k) {  // small k at compile time: the neighbour list stays in registers
    case 1: run_queries<D, 1>(tx, ty, k, num_threads, out); break;
    case 2: run_queries<D, 2>(tx, ty, k, num_threads, out); break;
    case 3: run_queries<D, 3>(tx, ty, k, num_threads, out); break;
    case 4: run_queries<D, 4>(tx, ty, k, num_threads, out); break;
    case 5: run_queries<D, 5>(tx, ty, k, num_threads, out); break;
    case 6: run_queries<D, 6>(tx, ty, k, num_threads, out); break;
    case 7: run_queries<D, 7>(tx, ty, k, num_threads, out); break;
    case 8: run_queries<D, 8>(tx, ty, k, num_threads, out); break;
    default: run_queries<D, 0>(tx, ty, k, num_threads, out); break;
  }
}

/// Neumaier-compensated running sum (Neumaier 1974): sum + carry.
struct CompensatedSum {
  double sum = 0.0, carry = 0.0;
  void add(double v) {
    const double t = sum + v;
    carry += std::abs(sum) >= std::abs(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
  }
};

/// What knn_terms returns besides the terms: their compensated sum, and the first point whose rho
/// (bad_rho) or nu (bad_nu) does not exist (+inf), n when none.
struct TermsSummary {
  double sum;
  int64_t bad_rho, bad_nu;
};

/// t_i = d/2 (log nu2_i - log rho2_i) + log((m - w_i) / m) - log((n - 1 - z_i) / (n - 1)), so that
/// D = mean(t) + log(m / (n - 1)); the copy terms vanish (exactly) without duplicates. Then rho2 and
/// nu2 become distances in the caller's units: sqrt times 2^exponent. With `log_distances` (the
/// robust search's outputs: log rho_i, log nu_i of unscaled points): d (log nu_i - log rho_i), and
/// the distances are their exp. In one parallel pass, so that
/// nothing O(n) is left on one thread: each block of kBlock points also sums its terms and finds
/// its first missing rho and nu; the block sums are added in block order. Blocks are fixed, so
/// results do not depend on the thread count.
inline TermsSummary knn_terms(int64_t n, int64_t m, int64_t dim, int exponent, bool log_distances,
                              int num_threads, const KnnOutputs& out, double* terms) {
  const double half_d = 0.5 * static_cast<double>(dim), full_d = static_cast<double>(dim);
  // A power of two times a double is correctly rounded, so this equals ldexp when 2^exponent is a
  // normal double, and is much cheaper.
  const bool plain = std::abs(exponent) < 1000;
  const double back = std::ldexp(1.0, plain ? exponent : 0);
  constexpr int64_t kBlock = 16384;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<CompensatedSum> sums(blocks);
  std::vector<int64_t> bad_rho(blocks, n), bad_nu(blocks, n);
  parallel_for_elastic(blocks, num_threads, [&](int64_t block) {
    const int64_t end = std::min(n, (block + 1) * kBlock);
    CompensatedSum sum;
    int64_t first_rho = n, first_nu = n;
    for (int64_t i = block * kBlock; i < end; ++i) {
      if (std::isinf(out.rho2[i]) && first_rho == n) first_rho = i;  // rare, predictable
      if (std::isinf(out.nu2[i]) && first_nu == n) first_nu = i;
      double t = log_distances ? full_d * (out.nu2[i] - out.rho2[i])
                               : half_d * (std::log(out.nu2[i]) - std::log(out.rho2[i]));
      if (out.copies_y[i] != 0) t += std::log1p(-static_cast<double>(out.copies_y[i]) / static_cast<double>(m));
      if (out.copies_x[i] != 0)
        t -= std::log1p(-static_cast<double>(out.copies_x[i]) / static_cast<double>(n - 1));
      terms[i] = t;
      sum.add(t);
      if (log_distances) {  // exponent 0: unscaled
        out.rho2[i] = std::exp(out.rho2[i]);
        out.nu2[i] = std::exp(out.nu2[i]);
        continue;
      }
      const double rho = std::sqrt(out.rho2[i]), nu = std::sqrt(out.nu2[i]);
      out.rho2[i] = plain ? rho * back : std::ldexp(rho, exponent);
      out.nu2[i] = plain ? nu * back : std::ldexp(nu, exponent);
    }
    sums[block] = sum;
    bad_rho[block] = first_rho;
    bad_nu[block] = first_nu;
  });
  CompensatedSum total;
  for (const CompensatedSum& sum : sums) {
    total.add(sum.sum);
    total.add(sum.carry);
  }
  return {total.sum + total.carry, *std::min_element(bad_rho.begin(), bad_rho.end()),
          *std::min_element(bad_nu.begin(), bad_nu.end())};
}

/// The largest and the smallest nonzero |value| of a[0..size) and b[0..size_b) (+inf: none), and
/// whether all values of each are finite, in one parallel pass over fixed chunks (a max, a min and
/// an "and" do not depend on the order, so neither on the threads).
struct Magnitudes {
  double largest, smallest;
  bool finite_a, finite_b;
};
inline Magnitudes largest_magnitude(const double* a, int64_t size_a, const double* b, int64_t size_b,
                                    int num_threads) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks_a = (size_a + kChunk - 1) / kChunk, chunks = chunks_a + (size_b + kChunk - 1) / kChunk;
  std::vector<double> largest(chunks, 0.0), smallest(chunks, std::numeric_limits<double>::infinity());
  std::vector<char> finite(chunks, 1);
  parallel_for_elastic(chunks, num_threads, [&](int64_t chunk) {
    const bool in_a = chunk < chunks_a;
    const double* v = in_a ? a : b;
    const int64_t c = in_a ? chunk : chunk - chunks_a, size = in_a ? size_a : size_b;
    const int64_t end = std::min(size, (c + 1) * kChunk);
    double big = 0.0, small = std::numeric_limits<double>::infinity();
    int64_t bad = 0;
    for (int64_t i = c * kChunk; i < end; ++i) {
      const double magnitude = std::abs(v[i]);
      bad += !(magnitude <= std::numeric_limits<double>::max());  // inf or NaN; branch free, vectorises
      big = magnitude > big ? magnitude : big;
      small = magnitude < small && magnitude > 0.0 ? magnitude : small;
    }
    largest[chunk] = big;
    smallest[chunk] = small;
    finite[chunk] = bad == 0;
  });
  Magnitudes result{0.0, std::numeric_limits<double>::infinity(), true, true};
  for (int64_t c = 0; c < chunks; ++c) {
    result.largest = std::max(result.largest, largest[c]);
    result.smallest = std::min(result.smallest, smallest[c]);
    (c < chunks_a ? result.finite_a : result.finite_b) &= finite[c] != 0;
  }
  return result;
}

}  // namespace pyvi::knn
