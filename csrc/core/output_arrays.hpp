// Output arrays a caller gives a sampler to fill (``out``): taken as they are, or refused with a clear
// error. Converting one (pybind11's forcecast) would make a copy that the sampler fills and the caller
// never sees, so a wrong dtype or layout is a TypeError, never a conversion.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "validate.hpp"

namespace pyvi {

namespace py = pybind11;

/// `out[name]` as an array of T with exactly `shape`, C-ordered and writeable: taken as it is (a
/// conversion would be a copy the sampler writes into and the caller never sees: a TypeError).
template <class T>
inline py::array_t<T> output_array(const py::dict& out, const char* name, const std::vector<py::ssize_t>& shape) {
  if (!out.contains(name)) fail(std::string("out must have an array '") + name + "' (one per output of the sampler)");
  const py::handle value = out[name];
  if (!py::isinstance<py::array_t<T, py::array::c_style>>(value)) {
    std::string got = std::string(py::str(py::type::handle_of(value).attr("__name__")));
    if (py::isinstance<py::array>(value))
      got = py::cast<py::array>(value).dtype().equal(py::dtype::of<T>())
                ? "an array that is not C-ordered"
                : "an array of " + std::string(py::str(value.attr("dtype")));
    throw py::type_error(std::string("out['") + name + "'] must be a C-ordered numpy array of " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " + got);
  }
  auto array = py::reinterpret_borrow<py::array_t<T>>(value);
  const std::vector<py::ssize_t> got(array.shape(), array.shape() + array.ndim());
  if (got != shape) {
    std::string want, have;
    for (const auto n : shape) want += (want.empty() ? "" : ", ") + std::to_string(n);
    for (const auto n : got) have += (have.empty() ? "" : ", ") + std::to_string(n);
    fail(std::string("out['") + name + "'] must have shape (" + want + "), got (" + have + ")");
  }
  if (!array.writeable()) fail(std::string("out['") + name + "'] must be writeable");
  return array;
}

/// `(*out)[name]` checked as output_array does, or a new uninitialised array of `shape` when there is no `out`.
template <class T>
inline py::array_t<T> output_or_new(const std::optional<py::dict>& out, const char* name,
                                    const std::vector<py::ssize_t>& shape) {
  return out ? output_array<T>(*out, name, shape) : py::array_t<T>(shape);
}

/// No two of `arrays` (named `names`, in order) share a byte: the sampler writes each in full.
inline void require_disjoint(std::initializer_list<py::array> arrays, const char* const* names) {
  const std::vector<py::array> all(arrays);
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const auto* a = static_cast<const char*>(all[i].data());
      const auto* b = static_cast<const char*>(all[j].data());
      if (all[i].nbytes() > 0 && all[j].nbytes() > 0 && a < b + all[j].nbytes() && b < a + all[i].nbytes())
        fail(std::string("out['") + names[i] + "'] and out['" + names[j] + "'] overlap in memory");
    }
}

}  // namespace pyvi
