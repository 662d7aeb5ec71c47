// The CUDA-key registration of an op's kernel: the CUDA kernel in a CUDA build; in a CPU-only build
// a kernel that raises "pyvi was built without CUDA" naming the op, never a silent copy to the host
// (pytorch_scatter's rule). Use inside TORCH_LIBRARY_IMPL(pyvi, CUDA, m):
//   m.impl("op", PYVI_CUDA_KERNEL(op_function<op_cuda>));
// In a CPU-only build the argument is dropped unexpanded, so the CUDA kernel is never referenced.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace pyvi {

inline void no_cuda_kernel(const c10::OperatorHandle& op, torch::jit::Stack*) {
  TORCH_CHECK(false, "pyvi was built without CUDA, so ", op.schema().name(),
              " cannot run on CUDA tensors: reinstall pyvi with nvcc available (or PYVI_CUDA=1)");
}

}  // namespace pyvi

#ifdef PYVI_WITH_CUDA
#define PYVI_CUDA_KERNEL(...) &__VA_ARGS__
#else
#define PYVI_CUDA_KERNEL(...) torch::CppFunction::makeFromBoxedFunction<&pyvi::no_cuda_kernel>()
#endif
