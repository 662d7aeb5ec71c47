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

}  // namespace pyvi
