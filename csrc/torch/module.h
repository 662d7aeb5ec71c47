// What pyvi._C exposes to Python besides the ops: integer constants (the kernels' size limits) and
// small functions (the coupling layout), so that Python reads these contracts from the extension
// instead of mirroring them. Each op's <op>.cpp registers its own at load time with
// PYVI_MODULE_CONSTANT / PYVI_MODULE_FUNCTION; PyInit__C (module.cpp) adds them all to the module.
// Include this header first (Python.h must precede the standard headers).
#pragma once

#include <Python.h>

#include <vector>

namespace pyvi::module {

struct Constant {
  const char* name;
  long value;
};

/// The registries PyInit__C reads (function-local statics: safe at static-initialisation time).
std::vector<Constant>& constants();
std::vector<PyMethodDef>& functions();

struct AddConstant {
  AddConstant(const char* name, long value) { constants().push_back({name, value}); }
};
struct AddFunction {
  AddFunction(const char* name, PyCFunction function, const char* doc) {
    functions().push_back({name, function, METH_VARARGS, doc});
  }
};

}  // namespace pyvi::module

#define PYVI_MODULE_CONCAT_(a, b) a##b
#define PYVI_MODULE_CONCAT(a, b) PYVI_MODULE_CONCAT_(a, b)
/// pyvi._C.<name> = value (an integer).
#define PYVI_MODULE_CONSTANT(name, value) \
  static const ::pyvi::module::AddConstant PYVI_MODULE_CONCAT(pyvi_module_constant_, __LINE__)(name, value)
/// pyvi._C.<name>(*args) -> function(self, args), a METH_VARARGS function.
#define PYVI_MODULE_FUNCTION(name, function, doc) \
  static const ::pyvi::module::AddFunction PYVI_MODULE_CONCAT(pyvi_module_function_, __LINE__)(name, function, doc)
