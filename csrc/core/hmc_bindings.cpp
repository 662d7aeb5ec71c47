// pyvi._core's targets and sampler: each registered target's class, log_prob_and_grad, leapfrog,
// hmc_start (validation here; the run it returns is advanced in chunks without the GIL, see
// hmc_run.hpp) and hmc (a whole run in one call), and what Python reads instead of mirroring it:
// the sampler's constants (hmc_constants) and its outputs (hmc_outputs, hmc_draws).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hmc/driver.hpp"
#include "hmc/dual_averaging.hpp"
#include "hmc/leapfrog.hpp"
#include "hmc/metric.hpp"
#include "hmc/transition.hpp"
#include "hmc_run.hpp"
#include "output_arrays.hpp"
#include "parallel.hpp"
#include "sampler_checks.hpp"
#include "targets/registry.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

namespace {

/// The sampler's outputs, in this order: the one list of their names.
constexpr const char* kOutputs[] = {"samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"};

/// The outputs for num_chains chains of num_samples draws in dim dimensions, keyed by kOutputs,
/// with the Draws view of them (what the C++ sampler fills; the Numba and numpy samplers fill the
/// same arrays through pyvi._core.hmc_draws): new uninitialised arrays, or the arrays of `out`
/// (e.g. a distributed run's rank 0 sampling straight into its rows of the gathered result).
std::pair<py::dict, hmc::Draws> allocate_draws(int64_t num_chains, int64_t num_samples, int64_t dim,
                                               const std::optional<py::dict>& out = std::nullopt) {
  const py::ssize_t c = num_chains, n = num_samples, d = dim;
  auto samples = output_or_new<double>(out, "samples", {c, n, d});
  auto log_prob = output_or_new<double>(out, "log_prob", {c, n});
  auto accept_prob = output_or_new<double>(out, "accept_prob", {c, n});
  auto divergent = output_or_new<bool>(out, "divergent", {c, n});
  auto num_steps = output_or_new<int32_t>(out, "num_steps", {c, n});
  auto step_size = output_or_new<double>(out, "step_size", {c});
  if (out) require_disjoint({samples, log_prob, accept_prob, divergent, num_steps, step_size}, kOutputs);
  const hmc::Draws draws{num_samples,
                         dim,
                         samples.mutable_data(),
                         log_prob.mutable_data(),
                         accept_prob.mutable_data(),
                         divergent.mutable_data(),
                         num_steps.mutable_data(),
                         step_size.mutable_data()};
  const py::object arrays[] = {samples, log_prob, accept_prob, divergent, num_steps, step_size};
  py::dict outputs;
  for (size_t i = 0; i < std::size(kOutputs); ++i) outputs[kOutputs[i]] = arrays[i];
  return {outputs, draws};
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
      for (int64_t i = block * kBlock; i < end; ++i) {
        lp[i] = target.log_prob_and_grad(xs + i * d, g + i * d);
        if constexpr (HasGradientRepair<Target>::value) target.repair_gradient(xs + i * d, g + i * d);
      }
    });
  }
  if (x_in.ndim() == 1) return py::make_tuple(py::float_(log_prob.at(0)), grad.reshape({py::ssize_t(d)}));
  return py::make_tuple(log_prob, grad);
}

template <class Target>
py::tuple leapfrog_binding(const Target& target, const DoubleArray& position, const DoubleArray& momentum,
                           double step_size, int64_t num_steps) {
  const int64_t d = target.dim();
  if (position.ndim() != 1 || position.shape(0) != d) fail("position must have shape (" + std::to_string(d) + ",)");
  if (momentum.ndim() != 1 || momentum.shape(0) != d) fail("momentum must have shape (" + std::to_string(d) + ",)");
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
    if (num_steps > 0) {
      hmc::Lanes<1> lanes;  // the samplers' leapfrog, on one lane
      lanes.count = 1;
      lanes.x[0] = x.mutable_data();
      lanes.p[0] = p.mutable_data();
      lanes.grad[0] = grad.mutable_data();
      lanes.step_size[0] = step_size;
      lanes.num_steps[0] = num_steps;
      hmc::leapfrog<1>(target, hmc::IdentityMetric{}, lanes);
      log_prob = lanes.log_prob[0];
    }
  }
  return py::make_tuple(x, p, log_prob);
}

/// The run's target is `target`, or *owned when given (a target made for this run, which keeps it).
template <class Target>
std::unique_ptr<HmcRun> hmc_start(const Target& target, const DoubleArray& initial, int64_t num_samples,
                                  int64_t num_warmup, double step_size, int64_t num_steps, bool random_steps,
                                  bool adapt_step_size, double target_accept, double max_energy_error,
                                  uint64_t seed, int64_t first_chain, const std::optional<py::dict>& out,
                                  std::unique_ptr<const Target> owned = nullptr) {
  const int64_t d = target.dim();
  const int64_t num_chains = require_initial(initial, d);
  require_run_settings(num_samples, num_warmup, step_size, target_accept, max_energy_error, first_chain);
  require_num_steps(num_steps);
  const hmc::Settings settings{num_samples,
                               num_warmup,
                               step_size,
                               {num_steps, random_steps, max_energy_error},
                               adapt_step_size,
                               target_accept,
                               seed,
                               static_cast<uint64_t>(first_chain)};
  hmc::Sampler<Target> sampler(target, initial.data(), num_chains, settings);  // evaluates the starts
  require_finite_starts(sampler.start_faults(), first_chain);
  auto [outputs, draws] = allocate_draws(num_chains, num_samples, d, out);
  return std::make_unique<HmcRunOf<Target>>(std::move(sampler), outputs, draws, std::move(owned));
}

template <class Target>
py::dict hmc_binding(const Target& target, const DoubleArray& initial, int64_t num_samples, int64_t num_warmup,
                     double step_size, int64_t num_steps, bool random_steps, bool adapt_step_size,
                     double target_accept, double max_energy_error, uint64_t seed, int num_threads,
                     int64_t first_chain) {
  require_at_least(num_threads, 0, "num_threads");
  const std::unique_ptr<HmcRun> run = hmc_start(target, initial, num_samples, num_warmup, step_size, num_steps,
                                                random_steps, adapt_step_size, target_accept, max_energy_error, seed,
                                                first_chain, std::nullopt);
  run->advance(run->num_iterations(), num_threads);
  return run->outputs();
}

template <class Target>
void bind_target(py::module_& m) {
  Target::bind(m);
  m.def("log_prob_and_grad", &log_prob_and_grad<Target>, py::arg("target"), py::arg("x"),
        py::arg("num_threads") = 1, "log p(x) and its gradient for x of shape (n, dim) or (dim,).");
  m.def("leapfrog", &leapfrog_binding<Target>, py::arg("target"), py::arg("position"), py::arg("momentum"),
        py::arg("step_size"), py::arg("num_steps"),
        "num_steps leapfrog steps from (position, momentum): returns (position, momentum, log_prob).");
  m.def("hmc", &hmc_binding<Target>, py::arg("target"), py::arg("initial"), py::arg("num_samples"),
        py::arg("num_warmup"), py::arg("step_size"), py::arg("num_steps"), py::arg("random_steps"),
        py::arg("adapt_step_size"), py::arg("target_accept"), py::arg("max_energy_error"), py::arg("seed"),
        py::arg("num_threads"), py::arg("first_chain") = 0,
        "HMC chains from initial (num_chains, dim); chain c uses random stream (seed, first_chain + c).");
}

/// hmc_start for whichever native target `target` is; the run keeps `target` alive (it reads it).
/// (One function that looks the type up, not one overload per target: pybind11's keep_alive on
/// overloads that return a polymorphic type crashed.)
std::unique_ptr<HmcRun> hmc_start_any(const py::object& target, const DoubleArray& initial, int64_t num_samples,
                                      int64_t num_warmup, double step_size, int64_t num_steps, bool random_steps,
                                      bool adapt_step_size, double target_accept, double max_energy_error,
                                      uint64_t seed, int64_t first_chain, const std::optional<py::dict>& out) {
  std::unique_ptr<HmcRun> run;
  if (py::isinstance<CallbackTarget>(target)) {  // small dimensions: the sampler of fixed dimension
    with_fixed_dim(target.cast<const CallbackTarget&>(), [&](auto owned) {
      const auto& fixed = *owned;
      run = hmc_start(fixed, initial, num_samples, num_warmup, step_size, num_steps, random_steps, adapt_step_size,
                      target_accept, max_energy_error, seed, first_chain, out, std::move(owned));
    });
  }
  NativeTargets::for_each([&](auto* tag) {
    using Target = std::remove_pointer_t<decltype(tag)>;
    if (!run && py::isinstance<Target>(target))
      run = hmc_start(target.cast<const Target&>(), initial, num_samples, num_warmup, step_size, num_steps,
                      random_steps, adapt_step_size, target_accept, max_energy_error, seed, first_chain, out);
  });
  if (!run)
    throw py::type_error("target must be one of pyvi._core's target classes (NativeTargets), got " +
                         std::string(py::str(py::type::handle_of(target).attr("__name__"))));
  run->keep_alive(target);
  return run;
}

}  // namespace

void bind_hmc(py::module_& m) {
  m.def("hmc_start", &hmc_start_any, py::arg("target"), py::arg("initial"), py::arg("num_samples"),
        py::arg("num_warmup"), py::arg("step_size"), py::arg("num_steps"), py::arg("random_steps"),
        py::arg("adapt_step_size"), py::arg("target_accept"), py::arg("max_energy_error"), py::arg("seed"),
        py::arg("first_chain") = 0, py::arg("out") = py::none(),
        "An HMC run from initial (num_chains, dim), the starts evaluated and checked; advance it in chunks. "
        "out: arrays to fill (as hmc_draws(..., out) takes them) instead of new ones.");
  py::class_<HmcRun>(m, "HmcRun")
      .def("advance", &HmcRun::advance, py::arg("iterations"), py::arg("num_threads"),
           "Runs the next `iterations` iterations of every chain (at most what is left), without the GIL.")
      .def_property_readonly("iteration", &HmcRun::iteration, "Iterations every chain has run.")
      .def_property_readonly("num_iterations", &HmcRun::num_iterations, "num_warmup + num_samples.")
      .def_property_readonly("outputs", &HmcRun::outputs, "The outputs, keyed by hmc_outputs.");
  NativeTargets::for_each([&](auto* tag) { bind_target<std::remove_pointer_t<decltype(tag)>>(m); });

  py::tuple outputs(std::size(kOutputs));
  for (size_t i = 0; i < std::size(kOutputs); ++i) outputs[i] = kOutputs[i];
  m.attr("hmc_outputs") = outputs;
  m.def(
      "hmc_draws",
      [](int64_t num_chains, int64_t num_samples, int64_t dim, const std::optional<py::dict>& out) {
        require_at_least(num_chains, 0, "num_chains");
        require_at_least(num_samples, 0, "num_samples");
        require_at_least(dim, 1, "dim");
        return allocate_draws(num_chains, num_samples, dim, out).first;
      },
      py::arg("num_chains"), py::arg("num_samples"), py::arg("dim"), py::arg("out") = py::none(),
      "Uninitialised outputs of hmc (a dict keyed by hmc_outputs), for the other backends to fill; with out, "
      "its arrays (a new dict of them), checked: every output, its dtype and shape, C-ordered and writeable, "
      "never converted (ValueError / TypeError).");
  py::dict constants;
  constants["gamma"] = hmc::DualAveraging::kGamma;
  constants["kappa"] = hmc::DualAveraging::kKappa;
  constants["t0"] = hmc::DualAveraging::kT0;
  constants["max_log_step"] = hmc::DualAveraging::kMaxLogStep;
  constants["max_energy_error"] = hmc::kMaxEnergyError;
  m.attr("hmc_constants") = constants;
}
