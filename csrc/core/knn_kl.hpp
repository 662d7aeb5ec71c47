// The k-NN estimator of KL(P || Q) of Wang, Kulkarni & Verdu (2009) from x ~ P (n x d) and
// y ~ Q (m x d), with the duplicate rule of pyvi.divergence:
//
//   rho_i = k-th smallest *positive* distance from x_i to the other points of x,
//   nu_i  = k-th smallest *positive* distance from x_i to the points of y,
//   k_i   = k + #{j != i : x_j == x_i},   l_i = k + #{j : y_j == x_i},
//   D     = d/n sum_i log(nu_i / rho_i) + 1/n sum_i [psi(l_i) - psi(k_i)] + log(m / (n - 1)),
//
// i.e. rho_i is the distance to x_i's k_i-th nearest neighbour and nu_i to its l_i-th, with k_i and
// l_i chosen per point as in the paper's eq. 17. Without duplicates k_i = l_i = k and this is eq. 5.
//
// The caller scales x and y by one power of two so that squared distances cannot overflow (the
// estimate is scale free). Queries run in x's tree order (nearby queries in a row: warm caches),
// in blocks over parallel_for; each query writes only its own slot, so results never depend on the
// thread count.
//
// References:
//   Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
//   k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eqs. 5 and 17.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kdtree.hpp"
#include "parallel.hpp"

namespace pyvi::knn {

/// psi(n) for an integer n >= 1: the harmonic sum below 16, the asymptotic series above (error
/// below 1e-16 relative there).
inline double digamma_int(int64_t n) {
  constexpr double kEulerGamma = 0.57721566490153286060651209008240243;
  if (n < 16) {
    double s = -kEulerGamma;
    for (int64_t j = 1; j < n; ++j) s += 1.0 / static_cast<double>(j);
    return s;
  }
  const double x = static_cast<double>(n), r2 = 1.0 / (x * x);
  return std::log(x) - 0.5 / x -
         r2 * (1.0 / 12 - r2 * (1.0 / 120 - r2 * (1.0 / 252 - r2 * (1.0 / 240 - r2 * (1.0 / 132)))));
}

/// Per-point outputs, indexed by x's original row.
struct KnnOutputs {
  double* rho2;    // squared rho_i (scaled units); +inf: fewer than k points of x differ from x_i
  double* nu2;     // squared nu_i (scaled units); +inf: fewer than k points of y differ from x_i
  int64_t* k_rho;  // k_i
  int64_t* k_nu;   // l_i
};

/// Fills `out` for every point of x (n x dim, scaled by 2^-exponent here) against x itself and y (m x dim).
template <int D>
void knn_distances(const double* x, int64_t n, const double* y, int64_t m, int64_t dim, int exponent,
                   int64_t k, int64_t leaf_size, int num_threads, const KnnOutputs& out) {
  const KDTree<D> tx(x, n, dim, exponent, leaf_size);
  const KDTree<D> ty(y, m, dim, exponent, leaf_size);
  const int64_t d = tx.dim();
  const double* queries = tx.points();  // x in tree order
  const std::vector<int64_t>& original = tx.index();
  constexpr int64_t kBlock = 256;  // consecutive tree-order queries per work item
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // Two passes, so each pass streams through one tree only.
  parallel_for(blocks, num_threads, [&](int64_t block) {
    std::vector<double> best(k);
    const int64_t end = std::min(n, (block + 1) * kBlock);
    for (int64_t r = block * kBlock; r < end; ++r) {
      const int64_t zeros = tx.search(queries + r * d, k, best.data());
      const int64_t i = original[r];
      out.rho2[i] = best[k - 1];
      out.k_rho[i] = k + zeros - 1;  // zeros counts x_i itself
    }
  });
  parallel_for(blocks, num_threads, [&](int64_t block) {
    std::vector<double> best(k);
    const int64_t end = std::min(n, (block + 1) * kBlock);
    for (int64_t r = block * kBlock; r < end; ++r) {
      const int64_t zeros = ty.search(queries + r * d, k, best.data());
      const int64_t i = original[r];
      out.nu2[i] = best[k - 1];
      out.k_nu[i] = k + zeros;
    }
  });
}

/// t_i = d/2 (log nu2_i - log rho2_i) + psi(l_i) - psi(k_i) for i < n.
inline void knn_terms(int64_t n, int64_t dim, const KnnOutputs& out, double* terms) {
  const double half_d = 0.5 * static_cast<double>(dim);
  for (int64_t i = 0; i < n; ++i) {
    double t = half_d * (std::log(out.nu2[i]) - std::log(out.rho2[i]));
    if (out.k_nu[i] != out.k_rho[i]) t += digamma_int(out.k_nu[i]) - digamma_int(out.k_rho[i]);
    terms[i] = t;
  }
}

/// Neumaier-compensated sum in index order (fixed order: the same on every thread count).
inline double ordered_sum(const double* v, int64_t n) {
  double sum = 0.0, carry = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double t = sum + v[i];
    carry += std::abs(sum) >= std::abs(v[i]) ? (sum - t) + v[i] : (v[i] - t) + sum;
    sum = t;
  }
  return sum + carry;
}

}  // namespace pyvi::knn
