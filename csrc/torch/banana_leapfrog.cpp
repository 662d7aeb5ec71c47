// pyvi::banana_leapfrog: schema, argument checks and registration (kernels in cpu/ and cuda/).
//
// The torch HMC sampler's leapfrog for the banana (pyvi.hmc.torch_backend): one op per transition
// instead of three per leapfrog step (drift, banana_log_joint, kick), each chain's trajectory in
// registers. x, momentum and grad are updated in place, so a CUDA graph replays it on the same
// memory; the checks look at shapes, dtypes and devices only (no host synchronisation). Not
// differentiable: the sampler runs under torch.inference_mode.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "banana_config.h"
#include "banana_leapfrog.h"
#include "checks.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Kernel = void (*)(const BananaParams<double>&, at::Tensor&, at::Tensor&, at::Tensor&, const at::Tensor&,
                        const at::Tensor&, at::Tensor&);

/// (chains, 2), contiguous (updated in place: a copy would leave the caller's tensor as it was).
void check_chains(const at::Tensor& t, const char* name, int64_t chains) {
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == chains && t.size(1) == 2, "banana_leapfrog: ", name,
                    " must have shape (", chains, ", 2), got ", t.sizes());
  TORCH_CHECK_VALUE(t.is_contiguous(), "banana_leapfrog: ", name, " must be contiguous (it is updated in place)");
}

template <Kernel kKernel>
at::Tensor banana_leapfrog_op(at::Tensor& x, at::Tensor& momentum, at::Tensor& grad, const at::Tensor& step_size,
                              const at::Tensor& num_steps, double num_data, double mean_y, double ss_y, double sigma_y,
                              double sigma_theta) {
  TORCH_CHECK_VALUE(x.dim() == 2, "banana_leapfrog: x must have shape (chains, 2), got ", x.sizes());
  const int64_t chains = x.size(0);
  check_chains(x, "x", chains);
  check_chains(momentum, "momentum", chains);
  check_chains(grad, "grad", chains);
  check_floating(x, "x");
  check_dtype_of(momentum, "momentum", x, "x");
  check_dtype_of(grad, "grad", x, "x");
  check_dtype_of(step_size, "step_size", x, "x");
  TORCH_CHECK_TYPE(num_steps.scalar_type() == at::kInt, "banana_leapfrog: num_steps must be int32, got ",
                   num_steps.scalar_type());
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"step_size", step_size},
                                std::pair<const char*, const at::Tensor&>{"num_steps", num_steps}}) {
    TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == chains, "banana_leapfrog: ", name, " must have shape (", chains,
                      ",), got ", t.sizes());
  }
  check_same_device("banana_leapfrog", {{"x", x}, {"momentum", momentum}, {"grad", grad}, {"step_size", step_size},
                                        {"num_steps", num_steps}});
  const BananaParams<double> params = banana_config(num_data, mean_y, ss_y, sigma_y, sigma_theta);
  if (x.scalar_type() == at::kFloat) check_float_range(params, "banana_leapfrog");
  at::Tensor log_prob = at::empty({chains}, x.options());
  kKernel(params, x, momentum, grad, step_size.contiguous(), num_steps.contiguous(), log_prob);
  return log_prob;
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("banana_leapfrog(Tensor(a!) x, Tensor(b!) momentum, Tensor(c!) grad, Tensor step_size, Tensor num_steps, "
        "float num_data, float mean_y, float ss_y, float sigma_y, float sigma_theta) -> Tensor log_prob");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("banana_leapfrog", &pyvi::banana_leapfrog_op<pyvi::banana_leapfrog_cpu>);
}

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) {
  m.impl("banana_leapfrog", PYVI_CUDA_KERNEL(pyvi::banana_leapfrog_op<pyvi::banana_leapfrog_cuda>));
}

TORCH_LIBRARY_IMPL(pyvi, Autograd, m) {
  m.impl("banana_leapfrog", torch::autograd::autogradNotImplementedFallback());
}
