// CPU kernels of pyvi::planar_forward / pyvi::planar_backward: the per-sample math of
// ../common/planar.h over samples in parallel; parameter gradients reduced per fixed chunk of
// samples, then chunk by chunk in order (deterministic for any thread count).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/planar.h"
#include "flows.h"
#include "no_cuda.h"

namespace pyvi {

void check_planar_args(const at::Tensor& z, const at::Tensor& params) {
  TORCH_CHECK_VALUE(z.dim() == 2, "z must have shape (batch, dim), got ", z.sizes());
  TORCH_CHECK_VALUE(params.dim() == 2 && params.size(0) >= 1 && params.size(1) == 2 * z.size(1) + 1,
                    "params must have shape (num_layers, 2 * dim + 1) = (K, ", 2 * z.size(1) + 1, "), got ",
                    params.sizes());
  TORCH_CHECK_TYPE(z.scalar_type() == at::kFloat || z.scalar_type() == at::kDouble,
                   "z must be float32 or float64, got ", z.scalar_type());
  TORCH_CHECK_TYPE(params.scalar_type() == z.scalar_type(), "params must have z's dtype ", z.scalar_type(),
                   ", got ", params.scalar_type());
  TORCH_CHECK_VALUE(params.device() == z.device(), "params and z must be on the same device");
}

void check_planar_backward_args(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                const at::Tensor& params, const at::Tensor& states) {
  check_planar_args(grad_x, params);
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), layers = params.size(0);
  TORCH_CHECK_VALUE(grad_log_det.dim() == 1 && grad_log_det.size(0) == batch,
                    "grad_log_det must have shape (batch,), got ", grad_log_det.sizes());
  TORCH_CHECK_VALUE(states.dim() == 3 && states.size(0) == batch && states.size(1) == layers && states.size(2) == dim,
                    "states must have shape (batch, num_layers, dim), got ", states.sizes());
  TORCH_CHECK_TYPE(grad_log_det.scalar_type() == grad_x.scalar_type() && states.scalar_type() == grad_x.scalar_type(),
                   "grad_x, grad_log_det and states must share one dtype");
  TORCH_CHECK_VALUE(grad_log_det.device() == grad_x.device() && states.device() == grad_x.device(),
                    "all tensors must be on the same device");
}

namespace {

constexpr int64_t kPlanarTile = 64;  // samples interleaved per layer in the CPU forward

template <typename T>
std::vector<T> prepare_layers(const T* params, int64_t layers, int dim) {
  std::vector<T> prep(static_cast<size_t>(layers * planar_prep_size(dim)));
  for (int64_t k = 0; k < layers; ++k)
    planar_prepare(params + k * (2 * dim + 1), dim, prep.data() + k * planar_prep_size(dim));
  return prep;
}

template <typename T>
struct AddTo {
  T* sums;
  void operator()(int index, T value) { sums[index] += value; }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> planar_forward_cpu(const at::Tensor& z_in, const at::Tensor& params_in) {
  check_planar_args(z_in, params_in);
  TORCH_CHECK(z_in.device().is_cpu(), "planar_forward_cpu: z must be a CPU tensor");
  const at::Tensor z = z_in.contiguous(), params = params_in.contiguous();
  const int64_t batch = z.size(0), dim = z.size(1), layers = params.size(0);
  at::Tensor x = at::empty({batch, dim}, z.options());
  at::Tensor log_det = at::empty({batch}, z.options());
  at::Tensor states = at::empty({batch, layers, dim}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "planar_forward_cpu", [&] {
    const auto prep = prepare_layers(params.const_data_ptr<scalar_t>(), layers, static_cast<int>(dim));
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    scalar_t* xp = x.mutable_data_ptr<scalar_t>();
    scalar_t* lp = log_det.mutable_data_ptr<scalar_t>();
    scalar_t* sp = states.mutable_data_ptr<scalar_t>();
    const int d = static_cast<int>(dim), stride = planar_prep_size(d);
    // Layers outer, a tile of samples inner: each sample's layers form a serial dependency chain
    // (exp, divide), so interleaving independent samples keeps the pipeline full.
    at::parallel_for(0, batch, kPlanarTile, [&](int64_t begin, int64_t end) {
      for (int64_t tile = begin; tile < end; tile += kPlanarTile) {
        const int64_t stop = std::min(end, tile + kPlanarTile);
        flow_math::LogOfProduct<scalar_t> det[kPlanarTile];
        for (int64_t i = tile; i < stop; ++i)
          for (int j = 0; j < d; ++j) xp[i * dim + j] = zp[i * dim + j];
        for (int64_t k = 0; k < layers; ++k)
          for (int64_t i = tile; i < stop; ++i)
            det[i - tile].multiply(
                planar_layer_forward(prep.data() + k * stride, d, xp + i * dim, sp + (i * layers + k) * dim));
        for (int64_t i = tile; i < stop; ++i) lp[i] = det[i - tile].value();
      }
    });
  });
  return {x, log_det, states};
}

std::tuple<at::Tensor, at::Tensor> planar_backward_cpu(const at::Tensor& grad_x_in, const at::Tensor& grad_log_det_in,
                                                       const at::Tensor& params_in, const at::Tensor& states_in) {
  check_planar_backward_args(grad_x_in, grad_log_det_in, params_in, states_in);
  TORCH_CHECK(grad_x_in.device().is_cpu(), "planar_backward_cpu: tensors must be on the CPU");
  const at::Tensor grad_x = grad_x_in.contiguous(), grad_log_det = grad_log_det_in.contiguous();
  const at::Tensor params = params_in.contiguous(), states = states_in.contiguous();
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), layers = params.size(0);
  at::Tensor grad_z = at::empty({batch, dim}, grad_x.options());
  at::Tensor grad_params = at::empty({layers, 2 * dim + 1}, grad_x.options());
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "planar_backward_cpu", [&] {
    const int d = static_cast<int>(dim), k_layers = static_cast<int>(layers);
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const auto prep = prepare_layers(pp, layers, d);
    const int64_t width = layers * planar_prep_size(d);
    const int64_t num_chunks = (batch + kGradChunk - 1) / kGradChunk;
    std::vector<scalar_t> partial(static_cast<size_t>(std::max<int64_t>(num_chunks, 1) * width), scalar_t(0));
    const scalar_t* gx = grad_x.const_data_ptr<scalar_t>();
    const scalar_t* gl = grad_log_det.const_data_ptr<scalar_t>();
    const scalar_t* sp = states.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
        AddTo<scalar_t> add{partial.data() + chunk * width};
        const int64_t end = std::min(batch, (chunk + 1) * kGradChunk);
        const int stride = planar_prep_size(d);
        for (int64_t i = chunk * kGradChunk; i < end; ++i)
          for (int j = 0; j < d; ++j) gz[i * dim + j] = gx[i * dim + j];
        // Layers outer, samples inner (independent chains overlap; see the forward).
        for (int k = k_layers - 1; k >= 0; --k)
          for (int64_t i = chunk * kGradChunk; i < end; ++i)
            planar_layer_backward(prep.data() + k * stride, d, sp + (i * layers + k) * dim, gl[i], gz + i * dim,
                                  k * stride, add);
      }
    });
    for (int64_t chunk = 1; chunk < num_chunks; ++chunk)
      for (int64_t j = 0; j < width; ++j) partial[j] += partial[chunk * width + j];
    scalar_t* gp = grad_params.mutable_data_ptr<scalar_t>();
    for (int64_t k = 0; k < layers; ++k)
      planar_param_grad(pp + k * (2 * dim + 1), d, partial.data() + k * planar_prep_size(d), gp + k * (2 * dim + 1));
  });
  return {grad_z, grad_params};
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("planar_forward(Tensor z, Tensor params) -> (Tensor x, Tensor log_det, Tensor states)");
  m.def("planar_backward(Tensor grad_x, Tensor grad_log_det, Tensor params, Tensor states) -> "
        "(Tensor grad_z, Tensor grad_params)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("planar_forward", &pyvi::planar_forward_cpu);
  m.impl("planar_backward", &pyvi::planar_backward_cpu);
}

PYVI_NO_CUDA_FALLBACK("planar_forward")
PYVI_NO_CUDA_FALLBACK("planar_backward")
