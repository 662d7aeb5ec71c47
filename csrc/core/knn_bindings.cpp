// pyvi._core.knn_kl: the k-NN KL estimator's binding (validation here, then GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "knn_kl.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

namespace {

/// e such that max |value| over both arrays lies in [2^(e-1), 2^e) (0 when all values are 0):
/// dividing by 2^e puts every coordinate in (-1, 1), so squared distances cannot overflow.
int scale_exponent(const DoubleArray& x, const DoubleArray& y) {
  double largest = 0.0;
  for (const DoubleArray* a : {&x, &y}) {
    const double* v = a->data();
    for (py::ssize_t i = 0; i < a->size(); ++i) largest = std::max(largest, std::abs(v[i]));
  }
  int exponent = 0;
  if (largest > 0.0) std::frexp(largest, &exponent);
  return exponent;
}

template <int D>
void run(const DoubleArray& x, const DoubleArray& y, int64_t k, int64_t leaf_size, int threads,
         int exponent, const knn::KnnOutputs& out) {
  knn::knn_distances<D>(x.data(), x.shape(0), y.data(), y.shape(0), x.shape(1), exponent, k,
                        leaf_size, threads, out);
}

py::dict knn_kl_binding(const DoubleArray& x, const DoubleArray& y, int64_t k, int num_threads,
                        int64_t leaf_size) {
  require_ndim(x, 2, "x");
  require_ndim(y, 2, "y");
  const int64_t n = x.shape(0), m = y.shape(0), d = x.shape(1);
  if (y.shape(1) != d)
    fail("x and y must have the same dimension (columns), got " + std::to_string(d) + " and " +
         std::to_string(y.shape(1)));
  if (d < 1) fail("x and y must have at least one column");
  if (n < 2) fail("x must hold at least 2 points, got " + std::to_string(n));
  if (m < 1) fail("y must hold at least 1 point, got " + std::to_string(m));
  require_at_least(k, 1, "k");
  if (k >= n) fail("k must be < len(x) = " + std::to_string(n) + ", got " + std::to_string(k));
  if (k > m) fail("k must be <= len(y) = " + std::to_string(m) + ", got " + std::to_string(k));
  require_finite(x, "x");
  require_finite(y, "y");
  require_at_least(num_threads, 0, "num_threads");
  require_at_least(leaf_size, 1, "leaf_size");

  const int exponent = scale_exponent(x, y);
  py::array_t<double> rho(n), nu(n), terms(n);  // rho, nu hold squared scaled distances until the end
  py::array_t<int64_t> copies_x(n), copies_y(n);
  const knn::KnnOutputs out{rho.mutable_data(), nu.mutable_data(), copies_x.mutable_data(),
                            copies_y.mutable_data()};
  {
    py::gil_scoped_release release;
    switch (d) {
      case 1: run<1>(x, y, k, leaf_size, num_threads, exponent, out); break;
      case 2: run<2>(x, y, k, leaf_size, num_threads, exponent, out); break;
      case 3: run<3>(x, y, k, leaf_size, num_threads, exponent, out); break;
      default: run<0>(x, y, k, leaf_size, num_threads, exponent, out); break;
    }
  }
  // The duplicate rule needs k points that differ from x_i in x \ {x_i} and in y (first offender).
  for (int64_t i = 0; i < n; ++i)
    if (std::isinf(out.rho2[i]))
      fail("x: point " + std::to_string(i) + " has fewer than k = " + std::to_string(k) +
           " other points of x distinct from it (too many duplicates for this k)");
  for (int64_t i = 0; i < n; ++i)
    if (std::isinf(out.nu2[i]))
      fail("y: fewer than k = " + std::to_string(k) + " points of y differ from x[" +
           std::to_string(i) + "] (too many duplicates for this k)");
  double value;
  {
    py::gil_scoped_release release;
    knn::knn_terms(n, m, d, exponent, num_threads, out, terms.mutable_data());
    value = knn::ordered_sum(terms.data(), n) / static_cast<double>(n) +
            std::log(static_cast<double>(m) / static_cast<double>(n - 1));
  }
  py::dict result;
  result["value"] = value;
  result["terms"] = terms;
  result["rho"] = rho;
  result["nu"] = nu;
  result["copies_x"] = copies_x;
  result["copies_y"] = copies_y;
  return result;
}

}  // namespace

void bind_knn(py::module_& m) {
  m.def("knn_kl", &knn_kl_binding, py::arg("x"), py::arg("y"), py::arg("k") = 1,
        py::arg("num_threads") = 1, py::arg("leaf_size") = 24,
        "k-NN estimate of KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d) (Wang et al. 2009, "
        "eq. 5; copies of each x_i left out, as in pyvi.divergence): dict with value, terms, rho, "
        "nu, copies_x, copies_y. num_threads = 0 uses all cores.");
}
