// The kernel registered for CUDA tensors when pyvi was built without CUDA: a clear error naming
// the op, never a silent copy to the host. Each op's CPU file registers it (pytorch_scatter's rule).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace pyvi {

inline void no_cuda_kernel(const c10::OperatorHandle& op, torch::jit::Stack*) {
  TORCH_CHECK(false, "pyvi was built without CUDA, so ", op.schema().name(),
              " cannot run on CUDA tensors: reinstall pyvi with nvcc available (or PYVI_CUDA=1)");
}

}  // namespace pyvi

/// Registers no_cuda_kernel for `op` under the CUDA key in a CPU-only build; nothing otherwise.
#ifdef PYVI_WITH_CUDA
#define PYVI_NO_CUDA_FALLBACK(op)
#else
#define PYVI_NO_CUDA_FALLBACK(op)                                                        \
  TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {                                                   \
    m.impl(op, torch::CppFunction::makeFromBoxedFunction<&pyvi::no_cuda_kernel>());     \
  }
#endif
