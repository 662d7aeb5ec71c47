// pyvi._core's NUTS: nuts_start (validation here; the NutsRun it returns is advanced in chunks of
// iterations without the GIL, Python reporting progress and seeing Ctrl-C between them) and nuts
// (one call), and what Python reads instead of mirroring it: the outputs (nuts_outputs,
// nuts_draws) and the warm-up's window sizes (nuts_constants).
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

#include "hmc/nuts_driver.hpp"
#include "output_arrays.hpp"
#include "sampler_checks.hpp"
#include "targets/registry.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

namespace {

// Stan's windowed warm-up: initial fast interval, first slow window, terminal fast interval.
constexpr int64_t kInitBuffer = 75, kBaseWindow = 25, kTermBuffer = 50;
constexpr int64_t kMaxTreeDepth = 30;  // 2^30 leapfrog steps per draw is already beyond any use

/// The outputs, in this order: the one list of their names.
constexpr const char* kOutputs[] = {"samples",    "log_prob", "accept_prob",  "divergent", "num_steps",
                                    "tree_depth", "energy",   "energy_error", "step_size", "inv_metric"};

/// The outputs (new uninitialised arrays, or the arrays of `out`, checked: output_arrays.hpp) and the
/// NutsDraws view of them.
std::pair<py::dict, hmc::NutsDraws> allocate(int64_t num_chains, int64_t rows, int64_t dim, bool dense,
                                             const std::optional<py::dict>& out = std::nullopt) {
  const py::ssize_t c = num_chains, r = rows, d = dim;
  const std::vector<py::ssize_t> per_draw{c, r}, metric = dense ? std::vector<py::ssize_t>{c, d, d}
                                                                : std::vector<py::ssize_t>{c, d};
  auto samples = output_or_new<double>(out, "samples", {c, r, d});
  auto log_prob = output_or_new<double>(out, "log_prob", per_draw);
  auto accept_prob = output_or_new<double>(out, "accept_prob", per_draw);
  auto divergent = output_or_new<bool>(out, "divergent", per_draw);
  auto num_steps = output_or_new<int32_t>(out, "num_steps", per_draw);
  auto tree_depth = output_or_new<int32_t>(out, "tree_depth", per_draw);
  auto energy = output_or_new<double>(out, "energy", per_draw);
  auto energy_error = output_or_new<double>(out, "energy_error", per_draw);
  auto step_size = output_or_new<double>(out, "step_size", {c});
  auto inv_metric = output_or_new<double>(out, "inv_metric", metric);
  if (out)
    require_disjoint({samples, log_prob, accept_prob, divergent, num_steps, tree_depth, energy, energy_error,
                      step_size, inv_metric},
                     kOutputs);
  const hmc::NutsDraws draws{rows,
                             dim,
                             samples.mutable_data(),
                             log_prob.mutable_data(),
                             accept_prob.mutable_data(),
                             divergent.mutable_data(),
                             num_steps.mutable_data(),
                             tree_depth.mutable_data(),
                             energy.mutable_data(),
                             energy_error.mutable_data(),
                             step_size.mutable_data(),
                             inv_metric.mutable_data()};
  const py::object arrays[] = {samples, log_prob,     accept_prob, divergent, num_steps, tree_depth,
                               energy,  energy_error, step_size,   inv_metric};
  py::dict outputs;
  for (size_t i = 0; i < std::size(kOutputs); ++i) outputs[kOutputs[i]] = arrays[i];
  return {outputs, draws};
}

hmc::MetricKind metric_kind(const std::string& metric) {
  if (metric == "identity") return hmc::MetricKind::kIdentity;
  if (metric == "diag") return hmc::MetricKind::kDiag;
  if (metric == "dense") return hmc::MetricKind::kDense;
  fail("metric must be 'identity', 'diag' or 'dense', got '" + metric + "'");
}

/// A NUTS run of any target, advanced chunk by chunk.
class NutsRun {
 public:
  virtual ~NutsRun() = default;
  /// Runs the next `iterations` iterations of every chain (at most what is left), without the GIL.
  void advance(int64_t iterations, int num_threads) {
    require_at_least(iterations, 0, "iterations");
    require_at_least(num_threads, 0, "num_threads");
    const int64_t end = iteration_ + std::min(iterations, num_iterations() - iteration_);
    {
      py::gil_scoped_release release;
      advance_to(iteration_, end, num_threads);
    }
    iteration_ = end;
  }
  int64_t iteration() const { return iteration_; }
  virtual int64_t num_iterations() const = 0;
  const py::dict& outputs() const { return outputs_; }
  void keep_alive(py::object target) { target_ = std::move(target); }

 protected:
  NutsRun(py::dict outputs, const hmc::NutsDraws& draws) : outputs_(std::move(outputs)), draws_(draws) {}
  virtual void advance_to(int64_t begin, int64_t end, int num_threads) = 0;
  py::dict outputs_;
  hmc::NutsDraws draws_;

 private:
  int64_t iteration_ = 0;
  py::object target_;
};

template <class Target>
class NutsRunOf final : public NutsRun {
 public:
  NutsRunOf(const Target& target, const double* initial, int64_t num_chains, const hmc::NutsSettings& settings,
            hmc::MetricKind kind, py::dict outputs, const hmc::NutsDraws& draws)
      : NutsRun(std::move(outputs), draws), sampler_(target, initial, num_chains, settings, kind) {}
  int64_t num_iterations() const override { return sampler_.num_iterations(); }
  const hmc::StartFaults& start_faults() const { return sampler_.start_faults(); }

 private:
  void advance_to(int64_t begin, int64_t end, int num_threads) override {
    sampler_.advance(begin, end, draws_, num_threads);
  }
  hmc::NutsSampler<Target> sampler_;
};

template <class Target>
std::unique_ptr<NutsRun> nuts_start(const Target& target, const DoubleArray& initial, int64_t num_samples,
                                    int64_t num_warmup, int64_t thin, bool save_warmup, double step_size,
                                    int64_t max_tree_depth, const std::string& metric, bool adapt_step_size,
                                    bool adapt_metric, double target_accept, double max_energy_error, uint64_t seed,
                                    const std::string& kernel, int64_t num_steps, bool random_steps,
                                    int64_t first_chain, const std::optional<py::dict>& out) {
  const int64_t d = target.dim();
  const int64_t num_chains = require_initial(initial, d);
  require_run_settings(num_samples, num_warmup, step_size, target_accept, max_energy_error, first_chain);
  require_at_least(thin, 1, "thin");
  require_at_least(max_tree_depth, 1, "max_tree_depth");
  if (max_tree_depth > kMaxTreeDepth) fail("max_tree_depth must be <= " + std::to_string(kMaxTreeDepth));
  const hmc::MetricKind kind = metric_kind(metric);
  if (kernel != "nuts" && kernel != "hmc") fail("kernel must be 'nuts' or 'hmc', got '" + kernel + "'");
  require_num_steps(num_steps);
  const hmc::NutsSettings settings{num_samples,    num_warmup,       thin,            save_warmup,
                                   step_size,      max_tree_depth,   max_energy_error, adapt_step_size,
                                   adapt_metric,   target_accept,    seed,            kInitBuffer,
                                   kTermBuffer,    kBaseWindow,      kernel == "hmc", num_steps,
                                   random_steps,   static_cast<uint64_t>(first_chain)};
  auto [outputs, draws] = allocate(num_chains, hmc::warmup_rows(settings) + hmc::sample_rows(settings), d,
                                   kind == hmc::MetricKind::kDense, out);
  auto run = std::make_unique<NutsRunOf<Target>>(target, initial.data(), num_chains, settings, kind, outputs, draws);
  require_finite_starts(run->start_faults(), first_chain);  // the sampler's constructor evaluated them
  return run;
}

/// nuts_start for whichever native target `target` is; the run keeps `target` alive (it reads it).
template <class... Args>
std::unique_ptr<NutsRun> nuts_start_any(const py::object& target, const Args&... args) {
  std::unique_ptr<NutsRun> run;
  NativeTargets::for_each([&](auto* tag) {
    using Target = std::remove_pointer_t<decltype(tag)>;
    if (!run && py::isinstance<Target>(target)) run = nuts_start(target.cast<const Target&>(), args...);
  });
  if (!run)
    throw py::type_error("target must be one of pyvi._core's target classes (NativeTargets), got " +
                         std::string(py::str(py::type::handle_of(target).attr("__name__"))));
  run->keep_alive(target);
  return run;
}

std::unique_ptr<NutsRun> nuts_start_binding(const py::object& target, const DoubleArray& initial, int64_t num_samples,
                                            int64_t num_warmup, int64_t thin, bool save_warmup, double step_size,
                                            int64_t max_tree_depth, const std::string& metric, bool adapt_step_size,
                                            bool adapt_metric, double target_accept, double max_energy_error,
                                            uint64_t seed, const std::string& kernel, int64_t num_steps,
                                            bool random_steps, int64_t first_chain,
                                            const std::optional<py::dict>& out) {
  return nuts_start_any(target, initial, num_samples, num_warmup, thin, save_warmup, step_size, max_tree_depth,
                        metric, adapt_step_size, adapt_metric, target_accept, max_energy_error, seed, kernel,
                        num_steps, random_steps, first_chain, out);
}

py::dict nuts_binding(const py::object& target, const DoubleArray& initial, int64_t num_samples, int64_t num_warmup,
                      int64_t thin, bool save_warmup, double step_size, int64_t max_tree_depth,
                      const std::string& metric, bool adapt_step_size, bool adapt_metric, double target_accept,
                      double max_energy_error, uint64_t seed, int num_threads, const std::string& kernel,
                      int64_t num_steps, bool random_steps, int64_t first_chain) {
  require_at_least(num_threads, 0, "num_threads");
  const std::unique_ptr<NutsRun> run =
      nuts_start_binding(target, initial, num_samples, num_warmup, thin, save_warmup, step_size, max_tree_depth,
                         metric, adapt_step_size, adapt_metric, target_accept, max_energy_error, seed, kernel,
                         num_steps, random_steps, first_chain, std::nullopt);
  run->advance(run->num_iterations(), num_threads);
  return run->outputs();
}

}  // namespace

void bind_nuts(py::module_& m) {
  m.def("nuts_start", &nuts_start_binding, py::arg("target"), py::arg("initial"), py::arg("num_samples"),
        py::arg("num_warmup"), py::arg("thin"), py::arg("save_warmup"), py::arg("step_size"),
        py::arg("max_tree_depth"), py::arg("metric"), py::arg("adapt_step_size"), py::arg("adapt_metric"),
        py::arg("target_accept"), py::arg("max_energy_error"), py::arg("seed"), py::arg("kernel") = "nuts",
        py::arg("num_steps") = 1, py::arg("random_steps") = false, py::arg("first_chain") = 0,
        py::arg("out") = py::none(),
        "A NUTS run (or, kernel='hmc', static HMC with num_steps) from initial (num_chains, dim) with Stan's "
        "windowed warm-up, the starts evaluated and checked; advance it in chunks. Chain c uses random stream "
        "(seed, first_chain + c). out: arrays to fill (as nuts_draws(..., out) takes them) instead of new ones.");
  py::class_<NutsRun>(m, "NutsRun")
      .def("advance", &NutsRun::advance, py::arg("iterations"), py::arg("num_threads"),
           "Runs the next `iterations` iterations of every chain (at most what is left), without the GIL.")
      .def_property_readonly("iteration", &NutsRun::iteration, "Iterations every chain has run.")
      .def_property_readonly("num_iterations", &NutsRun::num_iterations, "num_warmup + num_samples.")
      .def_property_readonly("outputs", &NutsRun::outputs, "The outputs, keyed by nuts_outputs.");
  m.def("nuts", &nuts_binding, py::arg("target"), py::arg("initial"), py::arg("num_samples"), py::arg("num_warmup"),
        py::arg("thin"), py::arg("save_warmup"), py::arg("step_size"), py::arg("max_tree_depth"), py::arg("metric"),
        py::arg("adapt_step_size"), py::arg("adapt_metric"), py::arg("target_accept"), py::arg("max_energy_error"),
        py::arg("seed"), py::arg("num_threads"), py::arg("kernel") = "nuts", py::arg("num_steps") = 1,
        py::arg("random_steps") = false, py::arg("first_chain") = 0, "nuts_start, then every iteration in one call.");
  py::tuple outputs(std::size(kOutputs));
  for (size_t i = 0; i < std::size(kOutputs); ++i) outputs[i] = kOutputs[i];
  m.attr("nuts_outputs") = outputs;
  m.def(
      "nuts_draws",
      [](int64_t num_chains, int64_t rows, int64_t dim, bool dense, const std::optional<py::dict>& out) {
        require_at_least(num_chains, 0, "num_chains");
        require_at_least(rows, 0, "rows");
        require_at_least(dim, 1, "dim");
        return allocate(num_chains, rows, dim, dense, out).first;
      },
      py::arg("num_chains"), py::arg("rows"), py::arg("dim"), py::arg("dense"), py::arg("out") = py::none(),
      "Uninitialised outputs of nuts (a dict keyed by nuts_outputs), for the other backends to fill; with out, "
      "its arrays (a new dict of them), checked as hmc_draws checks them.");
  py::dict constants;
  constants["init_buffer"] = kInitBuffer;
  constants["term_buffer"] = kTermBuffer;
  constants["base_window"] = kBaseWindow;
  constants["max_tree_depth"] = kMaxTreeDepth;
  m.attr("nuts_constants") = constants;
}
