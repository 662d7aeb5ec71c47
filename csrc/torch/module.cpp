// pyvi._C: the module object behind pyvi's custom torch ops.
//
// Importing pyvi._C (after torch) runs the static registrations of every op: each <op>.cpp in this
// folder declares its schemas (TORCH_LIBRARY_FRAGMENT(pyvi, ...)) and registers its CPU, CUDA and
// Autograd kernels (the kernels themselves live in cpu/ and cuda/), and the module attributes that
// carry its contracts to Python (module.h). This file defines the `pyvi` library and builds the
// module: `with_cuda` plus every registered constant and function. Adding an op does not change it.
#include "module.h"

#include <torch/library.h>

namespace pyvi::module {

std::vector<Constant>& constants() {
  static std::vector<Constant> registry;
  return registry;
}

std::vector<PyMethodDef>& functions() {
  static std::vector<PyMethodDef> registry;
  return registry;
}

}  // namespace pyvi::module

extern "C" {
/// The module: `with_cuda` and the ops' constants and functions. Importing the library is what
/// registers the ops.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
#ifdef PYVI_WITH_CUDA
  const long with_cuda = 1;
#else
  const long with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(module, "with_cuda", with_cuda) < 0) return Py_DECREF(module), nullptr;
  for (const auto& constant : pyvi::module::constants())
    if (PyModule_AddIntConstant(module, constant.name, constant.value) < 0) return Py_DECREF(module), nullptr;
  // PyModule_AddFunctions keeps pointers into the table: a static copy with its sentinel.
  static std::vector<PyMethodDef> table = [] {
    std::vector<PyMethodDef> defs = pyvi::module::functions();
    defs.push_back({nullptr, nullptr, 0, nullptr});
    return defs;
  }();
  if (PyModule_AddFunctions(module, table.data()) < 0) return Py_DECREF(module), nullptr;
  return module;
}
}

TORCH_LIBRARY(pyvi, m) {}
