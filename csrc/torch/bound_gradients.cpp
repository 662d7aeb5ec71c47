// pyvi::bound_gradients: schema, argument checks, output allocation and registration (kernels in
// cpu/bound_gradients_cpu.cpp and cuda/bound_gradients_cuda.cu). Not differentiable: it IS the
// gradient of the training objective with respect to each sample's log weight.
#include "bound_gradients.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>

#include "no_cuda.h"

namespace pyvi {
namespace {

void check_float(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), name, " must have the dtype of log_p (",
                   like.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == like.device(), name, " must be on the device of log_p (", like.device(),
                    "), got ", t.device());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> bound_gradients(const at::Tensor& log_p, const at::Tensor& grad_log_p,
                                                               const at::Tensor& log_det, const at::Tensor& noise,
                                                               double log_normaliser, int64_t num_particles,
                                                               bool iwae) {
  TORCH_CHECK_VALUE(log_p.dim() == 1, "log_p must have shape (num_samples,), got ", log_p.sizes());
  TORCH_CHECK_TYPE(log_p.scalar_type() == at::kFloat || log_p.scalar_type() == at::kDouble,
                   "log_p must be float32 or float64, got ", log_p.scalar_type());
  const int64_t n = log_p.size(0);
  TORCH_CHECK_VALUE(n >= 1, "log_p must hold at least one sample");
  TORCH_CHECK_VALUE(grad_log_p.dim() == 2 && grad_log_p.size(0) == n && grad_log_p.size(1) >= 1,
                    "grad_log_p must have shape (", n, ", dim), got ", grad_log_p.sizes());
  const int64_t dim = grad_log_p.size(1);
  TORCH_CHECK_VALUE(log_det.dim() == 1 && log_det.size(0) == n, "log_det must have shape (", n, ",), got ",
                    log_det.sizes());
  TORCH_CHECK_VALUE(noise.dim() == 2 && noise.size(0) == n && noise.size(1) == dim, "noise must have shape (", n,
                    ", ", dim, "), got ", noise.sizes());
  check_float(grad_log_p, log_p, "grad_log_p");
  check_float(log_det, log_p, "log_det");
  check_float(noise, log_p, "noise");
  TORCH_CHECK_VALUE(std::isfinite(log_normaliser), "log_normaliser must be finite");
  TORCH_CHECK_VALUE(num_particles >= 1 && n % num_particles == 0,
                    "num_particles must be >= 1 and divide the number of samples ", n, ", got ", num_particles);
  const BoundConfig config{n, num_particles, dim, log_normaliser, iwae};
  at::Tensor bound = at::empty({}, log_p.options());
  at::Tensor grad_x = at::empty({n, dim}, log_p.options());
  at::Tensor grad_log_det = at::empty({n}, log_p.options());
  const at::Tensor lp = log_p.contiguous(), g = grad_log_p.contiguous(), ld = log_det.contiguous(),
                   z = noise.contiguous();
  if (log_p.is_cuda()) {
#ifdef PYVI_WITH_CUDA
    bound_gradients_cuda(config, lp, g, ld, z, bound, grad_x, grad_log_det);
#endif
  } else {
    TORCH_CHECK_VALUE(log_p.device().is_cpu(), "bound_gradients runs on CPU and CUDA tensors, got ", log_p.device());
    bound_gradients_cpu(config, lp, g, ld, z, bound, grad_x, grad_log_det);
  }
  return {bound, grad_x, grad_log_det};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("bound_gradients(Tensor log_p, Tensor grad_log_p, Tensor log_det, Tensor noise, float log_normaliser, "
        "int num_particles, bool iwae) -> (Tensor bound, Tensor grad_x, Tensor grad_log_det)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("bound_gradients", &pyvi::bound_gradients); }

#ifdef PYVI_WITH_CUDA
TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("bound_gradients", &pyvi::bound_gradients); }
#else
PYVI_NO_CUDA_FALLBACK("bound_gradients")
#endif
