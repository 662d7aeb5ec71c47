// pyvi::adam_update_: schema, argument checks and registration (kernels in cpu/adam_update_cpu.cpp and
// cuda/adam_update_cuda.cu; per-element math in ../common/adam.h).
#include "adam_update.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>

#include "checks.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Kernel = void (*)(const AdamConfig&, at::Tensor&, const at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&,
                        const at::Tensor&, at::Tensor&, const at::Tensor&, at::Tensor&);

void check_like(const at::Tensor& t, const at::Tensor& param, const char* name) {
  TORCH_CHECK_VALUE(t.sizes() == param.sizes(), name, " must have the shape of param (", param.sizes(), "), got ",
                    t.sizes());
  check_dtype_of(t, name, param, "param");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

void check_scalar(const at::Tensor& t, at::ScalarType type, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == type, name, " must be ", type, ", got ", t.scalar_type());
}

template <Kernel kKernel>
void adam_update_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  at::Tensor& step, const at::Tensor& lr, at::Tensor& index, const at::Tensor& bound,
                  at::Tensor& history, double beta1, double beta2, double eps) {
  check_same_device("adam_update_", {{"param", param}, {"grad", grad}, {"exp_avg", exp_avg},
                                     {"exp_avg_sq", exp_avg_sq}, {"step", step}, {"lr", lr}, {"index", index},
                                     {"bound", bound}, {"history", history}});
  check_floating(param, "param");
  TORCH_CHECK_VALUE(param.is_contiguous(), "param must be contiguous");
  check_like(grad, param, "grad");
  check_like(exp_avg, param, "exp_avg");
  check_like(exp_avg_sq, param, "exp_avg_sq");
  check_scalar(step, at::kDouble, "step");
  check_scalar(lr, at::kDouble, "lr");
  check_scalar(index, at::kLong, "index");
  check_dtype_of(bound, "bound", param, "param");
  check_scalar(history, at::kDouble, "history");
  TORCH_CHECK_VALUE(step.numel() == 1 && index.numel() == 1 && bound.numel() == 1,
                    "step, index and bound must hold one value each");
  TORCH_CHECK_VALUE(lr.dim() == 1 && lr.size(0) >= 1 && lr.is_contiguous(), "lr must be a contiguous (num_steps,) "
                    "schedule, got shape ", lr.sizes());
  TORCH_CHECK_VALUE(history.dim() == 1 && history.size(0) == lr.size(0) && history.is_contiguous(),
                    "history must be contiguous with the schedule's shape (", lr.size(0), ",), got ", history.sizes());
  TORCH_CHECK_VALUE(beta1 >= 0.0 && beta1 < 1.0, "beta1 must be in [0, 1), got ", beta1);
  TORCH_CHECK_VALUE(beta2 >= 0.0 && beta2 < 1.0, "beta2 must be in [0, 1), got ", beta2);
  TORCH_CHECK_VALUE(eps > 0.0 && std::isfinite(eps), "eps must be finite and > 0, got ", eps);
  const AdamConfig config{beta1, beta2, eps};
  kKernel(config, param, grad, exp_avg, exp_avg_sq, step, lr, index, bound, history);
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("adam_update_(Tensor(a!) param, Tensor grad, Tensor(b!) exp_avg, Tensor(c!) exp_avg_sq, Tensor(d!) step, "
        "Tensor lr, Tensor(e!) index, Tensor bound, Tensor(f!) history, float beta1, float beta2, float eps) -> ()");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("adam_update_", &pyvi::adam_update_<pyvi::adam_update_cpu>); }

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("adam_update_", PYVI_CUDA_KERNEL(pyvi::adam_update_<pyvi::adam_update_cuda>)); }
