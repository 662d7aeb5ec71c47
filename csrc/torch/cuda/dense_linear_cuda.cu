// CUDA kernel of pyvi::dense_linear: cuBLAS through at::addmm (the CPU kernel's oneDNN choice is
// a CPU matter; there is no per-element math to share here).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>

#include "../dense_linear.h"

namespace pyvi {

at::Tensor dense_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  const c10::cuda::CUDAGuard guard(x.device());
  return dense_linear_blas(x, weight, bias);
}

}  // namespace pyvi
