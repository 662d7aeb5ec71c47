// pyvi._core: the torch-free native core (pybind11, numpy in and out).
//
// Each entry point validates its arguments (ValueError naming the argument), allocates its outputs,
// then releases the GIL and runs the unchecked kernels of the headers beside this file. The
// targets and the HMC sampler are bound in hmc_bindings.cpp, NUTS in nuts_bindings.cpp, the k-NN KL estimator in
// knn_bindings.cpp, the processes' barrier in process_bindings.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "../common/rng.h"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

void bind_hmc(py::module_& m);
void bind_knn(py::module_& m);
void bind_nuts(py::module_& m);
void bind_process_barrier(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyvi's torch-free native core: native targets, HMC and the k-NN KL estimator.";

  bind_hmc(m);
  bind_knn(m);
  bind_nuts(m);
  bind_process_barrier(m);

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
