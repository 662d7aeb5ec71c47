// pyvi._core.knn_kl: the k-NN KL estimator's binding (validation here, then the GIL released and
// the work where Ctrl-C can stop it: interrupt.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "interrupt.hpp"
#include "knn_kl.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

namespace {

template <int D>
void run(const DoubleArray& x, const DoubleArray& y, int64_t k, int64_t leaf_size, int threads,
         int exponent, bool robust, const knn::KnnOutputs& out) {
  knn::knn_distances<D>(x.data(), x.shape(0), y.data(), y.shape(0), x.shape(1), exponent, k,
                        leaf_size, threads, robust, out);
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
  require_at_least(num_threads, 0, "num_threads");
  require_at_least(leaf_size, 1, "leaf_size");
  // Each pass runs where Ctrl-C can stop it (interrupt.hpp), unless it is too short to need that.
  const bool small = (n + m) * d < (int64_t{1} << 16);
  const knn::Magnitudes magnitudes = run_interruptible(  // one parallel pass over x and y
      [&] { return knn::largest_magnitude(x.data(), x.size(), y.data(), y.size(), num_threads); }, small);
  if (!magnitudes.finite_a) fail("x must contain only finite values");
  if (!magnitudes.finite_b) fail("y must contain only finite values");
  // How points are compared (robust_search.hpp): squared distances of the points scaled into
  // (-1, 1), or for a huge dynamic range log distances of the points as they are.
  const knn::Scaling scaling = knn::choose_scaling(magnitudes.largest, magnitudes.smallest);
  const int exponent = scaling.exponent;
  const bool robust = scaling.robust;
  py::array_t<double> rho(n), nu(n), terms(n);  // rho, nu hold (squared) scaled distances until the end
  py::array_t<int64_t> copies_x(n), copies_y(n);
  const knn::KnnOutputs out{rho.mutable_data(), nu.mutable_data(), copies_x.mutable_data(),
                            copies_y.mutable_data()};
  double* const terms_out = terms.mutable_data();  // (pybind11 array calls stay on this thread)
  const knn::TermsSummary summary = run_interruptible(
      [&] {
        switch (d) {
          case 1: run<1>(x, y, k, leaf_size, num_threads, exponent, robust, out); break;
          case 2: run<2>(x, y, k, leaf_size, num_threads, exponent, robust, out); break;
          case 3: run<3>(x, y, k, leaf_size, num_threads, exponent, robust, out); break;
          default: run<0>(x, y, k, leaf_size, num_threads, exponent, robust, out); break;
        }
        return knn::knn_terms(n, m, d, exponent, robust, num_threads, out, terms_out);
      },
      small);
  const double value =
      summary.sum / static_cast<double>(n) + std::log(static_cast<double>(m) / static_cast<double>(n - 1));
  // The duplicate rule needs k points that differ from x_i in x \ {x_i} and in y (first offender).
  if (summary.bad_rho < n)
    fail("x: point " + std::to_string(summary.bad_rho) + " has fewer than k = " + std::to_string(k) +
         " other points of x distinct from it (too many duplicates for this k)");
  if (summary.bad_nu < n)
    fail("y: fewer than k = " + std::to_string(k) + " points of y differ from x[" +
         std::to_string(summary.bad_nu) + "] (too many duplicates for this k)");
  py::dict result;
  result["value"] = value;
  result["terms"] = terms;
  result["rho"] = rho;
  result["nu"] = nu;
  result["copies_x"] = copies_x;
  result["copies_y"] = copies_y;
  result["robust"] = robust;
  return result;
}

}  // namespace

void bind_knn(py::module_& m) {
  m.def("knn_kl", &knn_kl_binding, py::arg("x"), py::arg("y"), py::arg("k") = 1,
        py::arg("num_threads") = 1, py::arg("leaf_size") = 32,
        "k-NN estimate of KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d) (Wang et al. 2009, "
        "eq. 5; copies of each x_i left out, as in pyvi.divergence): dict with value, terms, rho, "
        "nu, copies_x, copies_y, robust (whether the input's dynamic range needed the robust "
        "search). num_threads = 0 uses all cores.");
  m.def(
      "knn_scaling",
      [](double largest, double smallest) {
        const knn::Scaling scaling = knn::choose_scaling(largest, smallest);
        return py::make_tuple(scaling.exponent, scaling.robust);
      },
      py::arg("largest"), py::arg("smallest"),
      "(exponent, robust): how knn_kl compares points whose largest magnitude is `largest` and "
      "smallest nonzero one `smallest` (inf: none): squared distances of the coordinates times "
      "2^-exponent, or (robust, exponent 0) log distances (csrc/core/robust_search.hpp).");
}
