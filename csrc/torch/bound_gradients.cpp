// pyvi::bound_gradients: schema, argument checks, output allocation and registration (kernels in
// cpu/bound_gradients_cpu.cpp and cuda/bound_gradients_cuda.cu). Not differentiable: it IS the
// gradient of the training objective with respect to each sample's log weight.
#include "bound_gradients.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>

#include "checks.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Kernel = void (*)(const BoundConfig&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        at::Tensor&, at::Tensor&, at::Tensor&);

template <Kernel kKernel>
std::tuple<at::Tensor, at::Tensor, at::Tensor> bound_gradients(const at::Tensor& log_p, const at::Tensor& grad_log_p,
                                                               const at::Tensor& log_det, const at::Tensor& noise,
                                                               double log_normaliser, int64_t num_particles,
                                                               bool iwae) {
  check_same_device("bound_gradients", {{"log_p", log_p}, {"grad_log_p", grad_log_p}, {"log_det", log_det},
                                        {"noise", noise}});
  TORCH_CHECK_VALUE(log_p.dim() == 1, "log_p must have shape (num_samples,), got ", log_p.sizes());
  check_floating(log_p, "log_p");
  const int64_t n = log_p.size(0);
  TORCH_CHECK_VALUE(n >= 1, "log_p must hold at least one sample");
  TORCH_CHECK_VALUE(grad_log_p.dim() == 2 && grad_log_p.size(0) == n && grad_log_p.size(1) >= 1,
                    "grad_log_p must have shape (", n, ", dim), got ", grad_log_p.sizes());
  const int64_t dim = grad_log_p.size(1);
  TORCH_CHECK_VALUE(log_det.dim() == 1 && log_det.size(0) == n, "log_det must have shape (", n, ",), got ",
                    log_det.sizes());
  TORCH_CHECK_VALUE(noise.dim() == 2 && noise.size(0) == n && noise.size(1) == dim, "noise must have shape (", n,
                    ", ", dim, "), got ", noise.sizes());
  check_dtype_of(grad_log_p, "grad_log_p", log_p, "log_p");
  check_dtype_of(log_det, "log_det", log_p, "log_p");
  check_dtype_of(noise, "noise", log_p, "log_p");
  TORCH_CHECK_VALUE(std::isfinite(log_normaliser), "log_normaliser must be finite");
  TORCH_CHECK_VALUE(num_particles >= 1 && n % num_particles == 0,
                    "num_particles must be >= 1 and divide the number of samples ", n, ", got ", num_particles);
  const BoundConfig config{n, num_particles, dim, log_normaliser, iwae};
  at::Tensor bound = at::empty({}, log_p.options());
  at::Tensor grad_x = at::empty({n, dim}, log_p.options());
  at::Tensor grad_log_det = at::empty({n}, log_p.options());
  const at::Tensor lp = log_p.contiguous(), g = grad_log_p.contiguous(), ld = log_det.contiguous(),
                   z = noise.contiguous();
  kKernel(config, lp, g, ld, z, bound, grad_x, grad_log_det);
  return {bound, grad_x, grad_log_det};
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("bound_gradients(Tensor log_p, Tensor grad_log_p, Tensor log_det, Tensor noise, float log_normaliser, "
        "int num_particles, bool iwae) -> (Tensor bound, Tensor grad_x, Tensor grad_log_det)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("bound_gradients", &pyvi::bound_gradients<pyvi::bound_gradients_cpu>); }

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("bound_gradients", PYVI_CUDA_KERNEL(pyvi::bound_gradients<pyvi::bound_gradients_cuda>));
}
