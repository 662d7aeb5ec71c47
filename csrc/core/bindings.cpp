// pyvi._core: the torch-free native core (pybind11, numpy in and out).
//
// Each entry point validates its arguments (ValueError naming the argument), allocates its outputs,
// then releases the GIL and runs the unchecked kernels of the headers beside this file.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "hmc.hpp"
#include "parallel.hpp"
#include "targets.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

void bind_knn(pybind11::module_& m);

namespace {

BananaTarget make_banana(double num_data, double mean_y, double ss_y, double sigma_y,
                         double sigma_theta) {
  if (!(num_data >= 1.0) || !std::isfinite(num_data)) fail("num_data must be a finite number >= 1");
  require_finite(mean_y, "mean_y");
  if (!(ss_y >= 0.0) || !std::isfinite(ss_y)) fail("ss_y must be a finite number >= 0");
  require_positive(sigma_y, "sigma_y");
  require_positive(sigma_theta, "sigma_theta");
  return {banana_params(num_data, mean_y, ss_y, sigma_y, sigma_theta)};
}

GaussianTarget make_gaussian(const DoubleArray& mean, const DoubleArray& precision) {
  require_ndim(mean, 1, "mean");
  require_ndim(precision, 2, "precision");
  const py::ssize_t d = mean.size();
  if (d < 1) fail("mean must hold at least one value");
  if (precision.shape(0) != d || precision.shape(1) != d)
    fail("precision must have shape (d, d) with d = len(mean) = " + std::to_string(d));
  require_finite(mean, "mean");
  require_finite(precision, "precision");
  const double* P = precision.data();
  for (py::ssize_t i = 0; i < d; ++i)
    for (py::ssize_t j = 0; j < i; ++j)
      if (std::abs(P[i * d + j] - P[j * d + i]) > 1e-12 * (std::abs(P[i * d + j]) + std::abs(P[j * d + i])))
        fail("precision must be symmetric");
  // Cholesky for log det(precision); fails exactly when precision is not positive definite.
  std::vector<double> L(P, P + d * d);
  double log_det = 0.0;
  for (py::ssize_t j = 0; j < d; ++j) {
    double diag = L[j * d + j];
    for (py::ssize_t k = 0; k < j; ++k) diag -= L[j * d + k] * L[j * d + k];
    if (!(diag > 0.0)) fail("precision must be positive definite");
    diag = std::sqrt(diag);
    L[j * d + j] = diag;
    log_det += 2.0 * std::log(diag);
    for (py::ssize_t i = j + 1; i < d; ++i) {
      double v = L[i * d + j];
      for (py::ssize_t k = 0; k < j; ++k) v -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = v / diag;
    }
  }
  constexpr double kLog2Pi = 1.8378770664093454835606594728112;
  return {std::vector<double>(mean.data(), mean.data() + d), std::vector<double>(P, P + d * d),
          -0.5 * static_cast<double>(d) * kLog2Pi + 0.5 * log_det};
}

/// Points as (n, dim): a (dim,) vector is taken as one point.
DoubleArray as_points(DoubleArray x, int64_t dim, const char* name) {
  if (x.ndim() == 1 && x.shape(0) == dim)
    return py::cast<DoubleArray>(x.reshape({py::ssize_t(1), py::ssize_t(dim)}));
  if (x.ndim() != 2 || x.shape(1) != dim)
    fail(std::string(name) + " must have shape (n, " + std::to_string(dim) + ") or (" +
         std::to_string(dim) + ",)");
  return x;
}

template <class Target>
py::tuple log_prob_and_grad(const Target& target, const DoubleArray& x_in, int num_threads) {
  const int64_t d = target.dim();
  DoubleArray x = as_points(x_in, d, "x");
  require_finite(x, "x");
  const py::ssize_t n = x.shape(0);
  py::array_t<double> log_prob(n), grad({n, py::ssize_t(d)});
  const double* xs = x.data();
  double* lp = log_prob.mutable_data();
  double* g = grad.mutable_data();
  {
    py::gil_scoped_release release;
    constexpr int64_t kBlock = 4096;  // points per work item: threads only pay off on big batches
    parallel_for((n + kBlock - 1) / kBlock, num_threads, [&](int64_t block) {
      const int64_t end = std::min<int64_t>(n, (block + 1) * kBlock);
      for (int64_t i = block * kBlock; i < end; ++i)
        lp[i] = target.log_prob_and_grad(xs + i * d, g + i * d);
    });
  }
  if (x_in.ndim() == 1) return py::make_tuple(py::float_(log_prob.at(0)), grad.reshape({py::ssize_t(d)}));
  return py::make_tuple(log_prob, grad);
}

template <class Target>
py::tuple leapfrog_binding(const Target& target, const DoubleArray& position,
                           const DoubleArray& momentum, double step_size, int64_t num_steps) {
  const int64_t d = target.dim();
  if (position.ndim() != 1 || position.shape(0) != d)
    fail("position must have shape (" + std::to_string(d) + ",)");
  if (momentum.ndim() != 1 || momentum.shape(0) != d)
    fail("momentum must have shape (" + std::to_string(d) + ",)");
  require_finite(position, "position");
  require_finite(momentum, "momentum");
  require_positive(step_size, "step_size");
  require_at_least(num_steps, 0, "num_steps");
  py::array_t<double> x(d), p(d), grad(d);
  std::copy(position.data(), position.data() + d, x.mutable_data());
  std::copy(momentum.data(), momentum.data() + d, p.mutable_data());
  double log_prob;
  {
    py::gil_scoped_release release;
    log_prob = target.log_prob_and_grad(x.mutable_data(), grad.mutable_data());
    if (num_steps > 0)
      log_prob = leapfrog(target, x.mutable_data(), p.mutable_data(), grad.mutable_data(),
                          step_size, num_steps);
  }
  return py::make_tuple(x, p, log_prob);
}

template <class Target>
py::dict hmc_binding(const Target& target, const DoubleArray& initial, int64_t num_samples,
                     int64_t num_warmup, double step_size, int64_t num_steps, bool random_steps,
                     bool adapt_step_size, double target_accept, double max_energy_error,
                     uint64_t seed, int num_threads) {
  const int64_t d = target.dim();
  require_ndim(initial, 2, "initial");
  if (initial.shape(1) != d)
    fail("initial must have shape (num_chains, " + std::to_string(d) + ")");
  const int64_t num_chains = initial.shape(0);
  require_at_least(num_chains, 1, "num_chains");
  require_finite(initial, "initial");
  require_at_least(num_samples, 0, "num_samples");
  require_at_least(num_warmup, 0, "num_warmup");
  require_at_least(num_steps, 1, "num_steps");
  if (num_steps > std::numeric_limits<int32_t>::max()) fail("num_steps is too large");
  require_positive(step_size, "step_size");
  if (!(target_accept > 0.0 && target_accept < 1.0))
    fail("target_accept must lie in (0, 1), got " + std::to_string(target_accept));
  require_positive(max_energy_error, "max_energy_error");
  require_at_least(num_threads, 0, "num_threads");
  std::vector<double> scratch(d);
  for (int64_t c = 0; c < num_chains; ++c)
    if (!std::isfinite(target.log_prob_and_grad(initial.data() + c * d, scratch.data())))
      fail("initial: the log density is not finite at chain " + std::to_string(c) + "'s start");

  py::array_t<double> samples({num_chains, num_samples, d});
  py::array_t<double> log_prob({num_chains, num_samples});
  py::array_t<double> accept_prob({num_chains, num_samples});
  py::array_t<bool> divergent({num_chains, num_samples});
  py::array_t<int32_t> steps({num_chains, num_samples});
  py::array_t<double> final_step(num_chains);
  const HMCSettings settings{num_samples,     num_warmup,    num_steps,        step_size,
                             random_steps,    adapt_step_size, target_accept, max_energy_error,
                             seed};
  const double* init = initial.data();
  double* s = samples.mutable_data();
  double* lp = log_prob.mutable_data();
  double* ap = accept_prob.mutable_data();
  bool* dv = divergent.mutable_data();
  int32_t* ns = steps.mutable_data();
  double* fs = final_step.mutable_data();
  {
    py::gil_scoped_release release;
    std::vector<ChainOutput> outs;
    outs.reserve(num_chains);
    for (int64_t c = 0; c < num_chains; ++c)
      outs.push_back({s + c * num_samples * d, lp + c * num_samples, ap + c * num_samples,
                      dv + c * num_samples, ns + c * num_samples, fs + c});
    hmc_chains(target, init, settings, num_chains, outs, num_threads);
  }
  py::dict result;
  result["samples"] = samples;
  result["log_prob"] = log_prob;
  result["accept_prob"] = accept_prob;
  result["divergent"] = divergent;
  result["num_steps"] = steps;
  result["step_size"] = final_step;
  return result;
}

template <class Target>
void bind_target_functions(py::module_& m) {
  m.def("log_prob_and_grad", &log_prob_and_grad<Target>, py::arg("target"), py::arg("x"),
        py::arg("num_threads") = 1,
        "log p(x) and its gradient for x of shape (n, dim) or (dim,).");
  m.def("leapfrog", &leapfrog_binding<Target>, py::arg("target"), py::arg("position"),
        py::arg("momentum"), py::arg("step_size"), py::arg("num_steps"),
        "num_steps leapfrog steps from (position, momentum): returns (position, momentum, log_prob).");
  m.def("hmc", &hmc_binding<Target>, py::arg("target"), py::arg("initial"), py::arg("num_samples"),
        py::arg("num_warmup"), py::arg("step_size"), py::arg("num_steps"),
        py::arg("random_steps"), py::arg("adapt_step_size"), py::arg("target_accept"),
        py::arg("max_energy_error"), py::arg("seed"), py::arg("num_threads"),
        "HMC chains from initial (num_chains, dim); chain c uses random stream (seed, c).");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyvi's torch-free native core: banana target, HMC (and later the k-NN KL estimator).";

  py::class_<BananaTarget>(m, "BananaTarget")
      .def(py::init(&make_banana), py::arg("num_data"), py::arg("mean_y"), py::arg("ss_y"),
           py::arg("sigma_y"), py::arg("sigma_theta"),
           "The banana from its sufficient statistics: n, mean(y), sum((y - mean(y))^2).")
      .def_property_readonly("num_data", [](const BananaTarget& t) { return t.params.num_data; })
      .def_property_readonly("mean_y", [](const BananaTarget& t) { return t.params.mean_y; })
      .def_property_readonly("dim", &BananaTarget::dim);
  py::class_<GaussianTarget>(m, "GaussianTarget")
      .def(py::init(&make_gaussian), py::arg("mean"), py::arg("precision"))
      .def_property_readonly("log_norm", [](const GaussianTarget& t) { return t.log_norm; })
      .def_property_readonly("dim", &GaussianTarget::dim);

  bind_target_functions<BananaTarget>(m);
  bind_target_functions<GaussianTarget>(m);
  bind_knn(m);

  // The random streams, exposed so tests can check the Numba twin bit for bit.
  m.def("random_uint64", [](uint64_t seed, uint64_t stream, int64_t n) {
    require_at_least(n, 0, "n");
    py::array_t<uint64_t> out(n);
    Xoshiro256pp rng(seed, stream);
    for (int64_t i = 0; i < n; ++i) out.mutable_data()[i] = rng.next();
    return out;
  }, py::arg("seed"), py::arg("stream"), py::arg("n"));
  m.def("random_normal", [](uint64_t seed, uint64_t stream, int64_t n) {
    require_at_least(n, 0, "n");
    py::array_t<double> out(n);
    Xoshiro256pp rng(seed, stream);
    rng.normals(out.mutable_data(), n);
    return out;
  }, py::arg("seed"), py::arg("stream"), py::arg("n"));

#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
