// CUDA kernel of pyvi::dense_linear: cuBLAS through at::addmm (the CPU kernel's oneDNN choice is
// a CPU matter; there is no per-element math to share here).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "dense_linear.h"

namespace pyvi {

at::Tensor dense_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_dense_linear_args(x, weight, bias);
  TORCH_CHECK(x.is_cuda(), "dense_linear_cuda: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x.device());
  return dense_linear_blas(x, weight, bias);
}

}  // namespace pyvi

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("dense_linear", &pyvi::dense_linear_cuda); }
