// CPU kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE and RealNVP stacks): the
// per-sample math of ../common/coupling.h over samples in parallel; parameter gradients reduced
// per fixed chunk of samples, then chunk by chunk in order (deterministic for any thread count).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "../common/coupling.h"
#include "flows.h"
#include "no_cuda.h"

namespace pyvi {

namespace {

CouplingShape make_shape(int64_t dim, int64_t num_couplings, int64_t hidden, int64_t depth, bool affine) {
  return {static_cast<int>(dim), static_cast<int>(num_couplings), static_cast<int>(hidden), static_cast<int>(depth),
          affine};
}

template <typename T>
struct AddTo {
  T* sums;
  void operator()(int64_t index, T value) { sums[index] += value; }
};

}  // namespace

void check_coupling_args(const at::Tensor& z, const at::Tensor& params, int64_t num_couplings, int64_t hidden,
                         int64_t depth, bool affine, double scale_bound) {
  TORCH_CHECK_VALUE(z.dim() == 2, "z must have shape (batch, dim), got ", z.sizes());
  TORCH_CHECK_VALUE(z.size(1) >= 2 && z.size(1) <= kCouplingMaxDim, "dim must be in [2, ", kCouplingMaxDim,
                    "] for the fused coupling kernels, got ", z.size(1));
  TORCH_CHECK_VALUE(num_couplings >= 1 && num_couplings <= 1024, "num_couplings must be in [1, 1024], got ",
                    num_couplings);
  TORCH_CHECK_VALUE(hidden >= 1 && hidden <= kCouplingMaxHidden, "hidden must be in [1, ", kCouplingMaxHidden,
                    "], got ", hidden);
  TORCH_CHECK_VALUE(depth >= 1 && depth <= kCouplingMaxDepth, "depth must be in [1, ", kCouplingMaxDepth, "], got ",
                    depth);
  TORCH_CHECK_VALUE(scale_bound > 0 && std::isfinite(scale_bound), "scale_bound must be finite and > 0");
  const int64_t expected = coupling_num_params(make_shape(z.size(1), num_couplings, hidden, depth, affine));
  TORCH_CHECK_VALUE(params.dim() == 1 && params.size(0) == expected, "params must have shape (", expected,
                    ",) for this layout, got ", params.sizes());
  TORCH_CHECK_TYPE(z.scalar_type() == at::kFloat || z.scalar_type() == at::kDouble,
                   "z must be float32 or float64, got ", z.scalar_type());
  TORCH_CHECK_TYPE(params.scalar_type() == z.scalar_type(), "params must have z's dtype ", z.scalar_type(), ", got ",
                   params.scalar_type());
  TORCH_CHECK_VALUE(params.device() == z.device(), "params and z must be on the same device");
}

void check_coupling_backward_args(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                                  const at::Tensor& states, int64_t num_couplings, int64_t hidden, int64_t depth,
                                  bool affine, double scale_bound) {
  check_coupling_args(grad_x, params, num_couplings, hidden, depth, affine, scale_bound);
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1);
  TORCH_CHECK_VALUE(grad_log_det.dim() == 1 && grad_log_det.size(0) == batch,
                    "grad_log_det must have shape (batch,), got ", grad_log_det.sizes());
  TORCH_CHECK_VALUE(states.dim() == 3 && states.size(0) == batch && states.size(1) == num_couplings + 1 &&
                        states.size(2) == dim,
                    "states must have shape (batch, num_couplings + 1, dim), got ", states.sizes());
  TORCH_CHECK_TYPE(grad_log_det.scalar_type() == grad_x.scalar_type() && states.scalar_type() == grad_x.scalar_type(),
                   "grad_x, grad_log_det and states must share one dtype");
  TORCH_CHECK_VALUE(grad_log_det.device() == grad_x.device() && states.device() == grad_x.device(),
                    "all tensors must be on the same device");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> coupling_forward_cpu(const at::Tensor& z_in, const at::Tensor& params_in,
                                                                    int64_t num_couplings, int64_t hidden,
                                                                    int64_t depth, bool affine, double scale_bound) {
  check_coupling_args(z_in, params_in, num_couplings, hidden, depth, affine, scale_bound);
  TORCH_CHECK(z_in.device().is_cpu(), "coupling_forward_cpu: z must be a CPU tensor");
  const at::Tensor z = z_in.contiguous(), params = params_in.contiguous();
  const int64_t batch = z.size(0), dim = z.size(1);
  const CouplingShape shape = make_shape(dim, num_couplings, hidden, depth, affine);
  at::Tensor x = at::empty({batch, dim}, z.options());
  at::Tensor log_det = at::empty({batch}, z.options());
  at::Tensor states = at::empty({batch, num_couplings + 1, dim}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "coupling_forward_cpu", [&] {
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    scalar_t* xp = x.mutable_data_ptr<scalar_t>();
    scalar_t* lp = log_det.mutable_data_ptr<scalar_t>();
    scalar_t* sp = states.mutable_data_ptr<scalar_t>();
    const auto bound = static_cast<scalar_t>(scale_bound);
    const int64_t state_stride = (num_couplings + 1) * dim;
    at::parallel_for(0, batch, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        lp[i] = coupling_forward_sample(pp, shape, bound, zp + i * dim, xp + i * dim, sp + i * state_stride);
    });
  });
  return {x, log_det, states};
}

std::tuple<at::Tensor, at::Tensor> coupling_backward_cpu(const at::Tensor& grad_x_in, const at::Tensor& grad_log_det_in,
                                                         const at::Tensor& params_in, const at::Tensor& states_in,
                                                         int64_t num_couplings, int64_t hidden, int64_t depth,
                                                         bool affine, double scale_bound) {
  check_coupling_backward_args(grad_x_in, grad_log_det_in, params_in, states_in, num_couplings, hidden, depth, affine,
                               scale_bound);
  TORCH_CHECK(grad_x_in.device().is_cpu(), "coupling_backward_cpu: tensors must be on the CPU");
  const at::Tensor grad_x = grad_x_in.contiguous(), grad_log_det = grad_log_det_in.contiguous();
  const at::Tensor params = params_in.contiguous(), states = states_in.contiguous();
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), num_params = params.size(0);
  const CouplingShape shape = make_shape(dim, num_couplings, hidden, depth, affine);
  at::Tensor grad_z = at::empty({batch, dim}, grad_x.options());
  at::Tensor grad_params = at::empty({num_params}, grad_x.options());
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_cpu", [&] {
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const scalar_t* gx = grad_x.const_data_ptr<scalar_t>();
    const scalar_t* gl = grad_log_det.const_data_ptr<scalar_t>();
    const scalar_t* sp = states.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    scalar_t* gp = grad_params.mutable_data_ptr<scalar_t>();
    const auto bound = static_cast<scalar_t>(scale_bound);
    const int64_t state_stride = (num_couplings + 1) * dim;
    const int64_t num_chunks = (batch + kGradChunk - 1) / kGradChunk;
    // Chunk 0 sums straight into grad_params; the others into scratch, added in chunk order.
    std::vector<scalar_t> partial(static_cast<size_t>(std::max<int64_t>(num_chunks - 1, 0) * num_params));
    for (int64_t j = 0; j < num_params; ++j) gp[j] = scalar_t(0);
    at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
        scalar_t* sums = chunk == 0 ? gp : partial.data() + (chunk - 1) * num_params;
        if (chunk > 0)
          for (int64_t j = 0; j < num_params; ++j) sums[j] = scalar_t(0);
        AddTo<scalar_t> add{sums};
        const int64_t end = std::min(batch, (chunk + 1) * kGradChunk);
        for (int64_t i = chunk * kGradChunk; i < end; ++i) {
          scalar_t* g = gz + i * dim;
          for (int64_t d = 0; d < dim; ++d) g[d] = gx[i * dim + d];
          coupling_backward_sample(pp, shape, bound, sp + i * state_stride, gl[i], g, add);
        }
      }
    });
    for (int64_t chunk = 1; chunk < num_chunks; ++chunk)
      for (int64_t j = 0; j < num_params; ++j) gp[j] += partial[(chunk - 1) * num_params + j];
  });
  return {grad_z, grad_params};
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("coupling_forward(Tensor z, Tensor params, int num_couplings, int hidden, int depth, bool affine, "
        "float scale_bound) -> (Tensor x, Tensor log_det, Tensor states)");
  m.def("coupling_backward(Tensor grad_x, Tensor grad_log_det, Tensor params, Tensor states, int num_couplings, "
        "int hidden, int depth, bool affine, float scale_bound) -> (Tensor grad_z, Tensor grad_params)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("coupling_forward", &pyvi::coupling_forward_cpu);
  m.impl("coupling_backward", &pyvi::coupling_backward_cpu);
}

PYVI_NO_CUDA_FALLBACK("coupling_forward")
PYVI_NO_CUDA_FALLBACK("coupling_backward")
