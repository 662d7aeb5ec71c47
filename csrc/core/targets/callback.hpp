// A target whose log density is a C function pointer: the native face of the user targets
// (pyvi.targets.NumbaTarget, through a numba cfunc pyvi builds, and pyvi.targets.CTarget, a user's
// own pointer), the scipy LowLevelCallable idea.
//
// The function has the signature
//   double logp(const double* x, double* grad, int64_t dim, void* user_data);
// it returns log p(x) (up to a constant) and writes d log p / dx into grad[0 .. dim). The samplers
// call it with the GIL released, from several threads at once when there are several chains: it
// must be reentrant, must not throw (a C++ exception crossing it is undefined behaviour) and must
// not call into Python without taking the GIL. A non-finite value or gradient is not an error: the
// transition is rejected and counted as divergent (transition.hpp).
//
// user_data is passed through untouched. `owner` is any Python object the pointer and user_data
// depend on (the numba cfunc, the packed data arrays): the target keeps it alive as long as it
// lives itself.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "../validate.hpp"

namespace pyvi {

struct CallbackTarget {
  using LogDensity = double (*)(const double* x, double* grad, int64_t dim, void* user_data);

  LogDensity fn;
  int64_t dimension;
  void* user_data;
  pybind11::object owner;

  int64_t dim() const { return dimension; }
  double log_prob_and_grad(const double* x, double* grad) const { return fn(x, grad, dimension, user_data); }

  static void bind(pybind11::module_& m) {
    namespace py = pybind11;
    py::class_<CallbackTarget>(m, "CallbackTarget")
        .def(py::init([](uintptr_t address, int64_t dim, uintptr_t user_data, py::object owner) {
               if (address == 0) fail("address must be a non-null function pointer");
               require_at_least(dim, 1, "dim");
               return CallbackTarget{reinterpret_cast<LogDensity>(address), dim,
                                     reinterpret_cast<void*>(user_data), std::move(owner)};
             }),
             py::arg("address"), py::arg("dim"), py::arg("user_data") = 0, py::arg("owner") = py::none(),
             "A target calling double logp(const double* x, double* grad, int64_t dim, void* user_data) at "
             "`address` with `user_data`; keeps `owner` alive.")
        .def_property_readonly("address", [](const CallbackTarget& t) { return reinterpret_cast<uintptr_t>(t.fn); })
        .def_property_readonly("user_data",
                               [](const CallbackTarget& t) { return reinterpret_cast<uintptr_t>(t.user_data); })
        .def_property_readonly("owner", [](const CallbackTarget& t) { return t.owner; })
        .def_property_readonly("dim", &CallbackTarget::dim);
  }
};

/// A CallbackTarget of dimension D known at compile time: the same pointer, called the same way,
/// but the sampler's own loops around each call (drift, kick, momentum, energy, copies) are
/// unrolled, its state kept in local arrays, and several chains run in interleaved groups, as for
/// a built-in target of fixed dimension (hmc/leapfrog.hpp). With a run-time dimension those loops
/// cost more than a small user density itself (#11: the user banana on cpp ran at 2.1x the
/// built-in). The arithmetic of each chain is the same either way, so are the draws.
template <int D>
struct FixedDimCallback {
  static constexpr int kDim = D;
  CallbackTarget::LogDensity fn;
  void* user_data;

  int64_t dim() const { return D; }
  double log_prob_and_grad(const double* x, double* grad) const { return fn(x, grad, D, user_data); }
};

/// Dimensions up to this one get a FixedDimCallback (each one more instantiation of the sampler).
constexpr int kMaxFixedCallbackDim = 8;

/// Calls f(std::unique_ptr<const FixedDimCallback<D>>) for target's dimension D when it is at most
/// kMaxFixedCallbackDim, and returns whether it did (the caller falls back on the run-time one).
template <int D = 1, class F>
bool with_fixed_dim(const CallbackTarget& target, F&& f) {
  if constexpr (D > kMaxFixedCallbackDim) {
    return false;
  } else {
    if (target.dimension == D) {
      f(std::make_unique<const FixedDimCallback<D>>(FixedDimCallback<D>{target.fn, target.user_data}));
      return true;
    }
    return with_fixed_dim<D + 1>(target, std::forward<F>(f));
  }
}

}  // namespace pyvi
