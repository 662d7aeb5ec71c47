// pyvi._C: the module object behind pyvi's custom torch ops.
//
// Importing pyvi._C (after torch) runs the static registrations of every op file in this folder:
// each <op>_cpu.cpp declares its schema with TORCH_LIBRARY_FRAGMENT(pyvi, ...) and registers its
// CPU kernel, each <op>_cuda.cu its CUDA kernel. Autograd formulas and fake kernels are registered
// from Python (pyvi/ops.py). Adding an op means adding files here; this one does not change.
#include <Python.h>
#include <torch/library.h>

extern "C" {
/// A bare module with one attribute, `with_cuda`: importing the library is what registers the ops.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
#ifdef PYVI_WITH_CUDA
  PyModule_AddIntConstant(module, "with_cuda", 1);
#else
  PyModule_AddIntConstant(module, "with_cuda", 0);
#endif
  return module;
}
}

TORCH_LIBRARY(pyvi, m) {}
