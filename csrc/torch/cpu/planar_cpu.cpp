// CPU kernels of pyvi::planar_forward / pyvi::planar_backward: the per-sample math of
// ../common/planar.h over samples in parallel; parameter gradients reduced per fixed chunk of
// samples, then chunk by chunk in order (chunked_sum.h: deterministic for any thread count).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <vector>

#include "../../common/planar.h"
#include "../planar.h"
#include "chunked_sum.h"

namespace pyvi {
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

void planar_forward_cpu(const at::Tensor& z, const at::Tensor& params, at::Tensor& x, at::Tensor& log_det,
                        at::Tensor& states) {
  const int64_t batch = z.size(0), dim = z.size(1), layers = params.size(0);
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
}

void planar_backward_cpu(const at::Tensor& grad_x, const at::Tensor& grad_log_det, const at::Tensor& params,
                         const at::Tensor& states, at::Tensor& grad_z, at::Tensor& grad_params) {
  const int64_t batch = grad_x.size(0), dim = grad_x.size(1), layers = params.size(0);
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "planar_backward_cpu", [&] {
    const int d = static_cast<int>(dim), k_layers = static_cast<int>(layers), stride = planar_prep_size(d);
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const auto prep = prepare_layers(pp, layers, d);
    const scalar_t* gx = grad_x.const_data_ptr<scalar_t>();
    const scalar_t* gl = grad_log_det.const_data_ptr<scalar_t>();
    const scalar_t* sp = states.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    // Per layer, the 2D+2 sums over samples that planar_param_grad chains through u_hat(u, w).
    std::vector<scalar_t> sums(static_cast<size_t>(layers * stride));
    cpu::sum_over_chunks(batch, layers * stride, sums.data(), [&](int64_t begin, int64_t end, scalar_t* row) {
      AddTo<scalar_t> add{row};
      for (int64_t i = begin; i < end; ++i)
        for (int j = 0; j < d; ++j) gz[i * dim + j] = gx[i * dim + j];
      // Layers outer, samples inner (independent chains overlap; see the forward).
      for (int k = k_layers - 1; k >= 0; --k)
        for (int64_t i = begin; i < end; ++i)
          planar_layer_backward(prep.data() + k * stride, d, sp + (i * layers + k) * dim, gl[i], gz + i * dim,
                                k * stride, add);
    });
    scalar_t* gp = grad_params.mutable_data_ptr<scalar_t>();
    for (int64_t k = 0; k < layers; ++k)
      planar_param_grad(pp + k * (2 * dim + 1), d, sums.data() + k * stride, gp + k * (2 * dim + 1));
  });
}

}  // namespace pyvi
