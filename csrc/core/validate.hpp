// Checks made once at the binding boundary, so the hot loops behind it can run unchecked.
// Every message names the argument, and every failure is a Python ValueError.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

namespace pyvi {

namespace py = pybind11;
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

[[noreturn]] inline void fail(const std::string& message) { throw py::value_error(message); }

inline void require_finite(const DoubleArray& a, const char* name) {
  const double* data = a.data();
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(data[i])) fail(std::string(name) + " must contain only finite values");
}

inline void require_finite(double value, const char* name) {
  if (!std::isfinite(value)) fail(std::string(name) + " must be finite, got " + std::to_string(value));
}

inline void require_positive(double value, const char* name) {
  if (!(value > 0.0) || !std::isfinite(value))
    fail(std::string(name) + " must be a finite number > 0, got " + std::to_string(value));
}

inline void require_ndim(const DoubleArray& a, py::ssize_t ndim, const char* name) {
  if (a.ndim() != ndim)
    fail(std::string(name) + " must be a " + std::to_string(ndim) + "-D array, got " +
         std::to_string(a.ndim()) + "-D");
}

inline void require_at_least(long long value, long long minimum, const char* name) {
  if (value < minimum)
    fail(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " +
         std::to_string(value));
}

}  // namespace pyvi
