// CPU kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE and RealNVP stacks): the
// per-sample math of ../../common/coupling.h, evaluated on tiles of interleaved samples
// (coupling_tile_cpu.h) in parallel, compiled for the CPU's instruction set (isa.h); parameter
// gradients reduced per fixed chunk of samples, then chunk by chunk in order (chunked_sum.h:
// deterministic for any thread count). Backward of wide conditioners: batch GEMMs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <utility>
#include <vector>

#include "../coupling.h"
#include "chunked_sum.h"
#include "coupling_tile_cpu.h"
#include "isa.h"

namespace pyvi {
namespace {

/// Width from which the CPU backward evaluates the conditioners as whole-batch GEMMs (see below).
constexpr int64_t kGemmMinHidden = 16;

// -- backward of wide conditioners: the same math as whole-batch matrix products ---------------
//
// The forward always runs on tiles of interleaved samples (32 lanes of broadcast-weight FMAs run
// a 64-wide layer at close to the FPU's peak, faster than ATen's addmm at these shapes). The
// tile backward's per-weight reductions over lanes do not scale to wide layers, so from
// hidden >= kGemmMinHidden on the CPU backward recomputes each coupling for the whole batch and
// runs the same analytic backward with ATen GEMMs, inside the same op: still one forward and one
// backward op for the stack, no autograd graph. Parameter gradients are GEMM reductions (BLAS
// order, deterministic for a fixed thread count).

struct MlpViews {
  std::vector<at::Tensor> weights;  // (rows, cols) views into params
  std::vector<at::Tensor> biases;
};

/// Views of coupling k's MLP layers into the packed vector `flat` (the layout of ../../common/coupling.h).
MlpViews mlp_views(const at::Tensor& flat, const CouplingShape& s, int k) {
  MlpViews views;
  const int64_t base = coupling_offset(s, k);
  for (int l = 0; l <= s.depth; ++l) {
    int rows, cols;
    coupling_layer_shape(s, k, l, &rows, &cols);
    const int64_t at = base + coupling_layer_offset(s, k, l);
    views.weights.push_back(flat.narrow(0, at, int64_t(rows) * cols).view({rows, cols}));
    views.biases.push_back(flat.narrow(0, at + int64_t(rows) * cols, rows));
  }
  return views;
}

/// Hidden activations (post-ReLU, one per layer) and outputs of an MLP on a (B, din) batch.
std::pair<std::vector<at::Tensor>, at::Tensor> mlp_batch(const MlpViews& mlp, const at::Tensor& input) {
  std::vector<at::Tensor> acts;
  at::Tensor h = input;
  const size_t depth = mlp.weights.size() - 1;
  for (size_t l = 0; l < depth; ++l) {
    h = at::addmm(mlp.biases[l], h, mlp.weights[l].t()).relu_();
    acts.push_back(h);
  }
  return {acts, at::addmm(mlp.biases[depth], h, mlp.weights[depth].t())};
}

/// The backward for hidden >= kGemmMinHidden, into grad_z (the running dL/dx, then dL/dz) and grad_params.
void coupling_backward_gemm(const CouplingShape& s, double bound, const at::Tensor& grad_x,
                            const at::Tensor& grad_log_det, const at::Tensor& params, const at::Tensor& states,
                            at::Tensor& g, at::Tensor& grad_params) {
  const int64_t dim = s.dim;
  g.copy_(grad_x);
  grad_params.zero_();
  int64_t offset = coupling_offset(s, s.num_couplings);
  if (!s.affine) {
    const at::Tensor e = at::exp(params.narrow(0, offset, dim));
    const at::Tensor before = states.select(1, s.num_couplings);
    grad_params.narrow(0, offset, dim).copy_((g * before * e).sum(0) + grad_log_det.sum());
    g.mul_(e);
  }
  for (int k = s.num_couplings - 1; k >= 0; --k) {
    offset -= coupling_mlp_size(s, k);
    int cs, cn, ms, mn;
    coupling_halves(s, k, &cs, &cn, &ms, &mn);
    const at::Tensor input = states.select(1, k);
    const at::Tensor cond = input.narrow(1, cs, cn).contiguous();
    const MlpViews mlp = mlp_views(params, s, k);
    const MlpViews grads = mlp_views(grad_params, s, k);
    auto [acts, out] = mlp_batch(mlp, cond);
    at::Tensor g_out;
    at::Tensor g_moved = g.narrow(1, ms, mn);
    if (s.affine) {
      const at::Tensor th = at::tanh(out.narrow(1, 0, mn) / bound);
      const at::Tensor e = at::exp(th * bound);
      const at::Tensor g_scale =
          (g_moved * input.narrow(1, ms, mn) * e + grad_log_det.unsqueeze(1)) * (1.0 - th * th);
      g_out = at::cat({g_scale, g_moved}, 1);
      g_moved.mul_(e);
    } else {
      g_out = g_moved.contiguous();
    }
    at::Tensor g_h = g_out;
    for (int64_t l = s.depth; l >= 0; --l) {
      const at::Tensor& layer_input = l == 0 ? cond : acts[l - 1];
      at::Tensor grad_weight = grads.weights[l];  // a view into grad_params: written in place
      at::Tensor grad_bias = grads.biases[l];
      at::mm_out(grad_weight, g_h.t(), layer_input);
      at::sum_out(grad_bias, g_h, {0});
      g_h = at::mm(g_h, mlp.weights[l]);
      if (l > 0) g_h = at::threshold_backward(g_h, acts[l - 1], 0);  // ReLU' of the layer below
    }
    g.narrow(1, cs, cn).add_(g_h);
  }
}

}  // namespace

// Narrow conditioners (and every forward): tiles of interleaved samples (coupling_tile_cpu.h), in
// the copy compiled for the CPU's instruction set up to x86-64-v3 (isa.h: AVX2 + FMA, 4 doubles per
// instruction instead of SSE2's 2). The choice depends on the machine only, never on the thread
// count; the v3 copy contracts a * b + c into FMAs, so its last bits differ from the baseline's.

void coupling_forward_cpu(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params, at::Tensor& x,
                          at::Tensor& log_det, at::Tensor& states) {
  const int64_t batch = z.size(0);
  const CouplingShape& shape = config.shape;
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "coupling_forward_cpu", [&] {
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    scalar_t* xp = x.mutable_data_ptr<scalar_t>();
    scalar_t* lp = log_det.mutable_data_ptr<scalar_t>();
    scalar_t* sp = states.mutable_data_ptr<scalar_t>();
    const auto bound = static_cast<scalar_t>(config.scale_bound);
    const int64_t num_tiles = (batch + coupling_tile::kLanes - 1) / coupling_tile::kLanes;
    at::parallel_for(0, num_tiles, 8, [&](int64_t tile_begin, int64_t tile_end) {
      cpu::dispatch<&coupling_tile::forward_tiles<scalar_t>>(pp, shape, bound, zp, xp, lp, sp, batch, tile_begin,
                                                             tile_end);
    });
  });
}

void coupling_backward_cpu(const CouplingConfig& config, const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                           const at::Tensor& params, const at::Tensor& states, at::Tensor& grad_z,
                           at::Tensor& grad_params) {
  const CouplingShape& shape = config.shape;
  if (shape.hidden >= kGemmMinHidden)
    return coupling_backward_gemm(shape, config.scale_bound, grad_x, grad_log_det, params, states, grad_z,
                                  grad_params);
  const int64_t batch = grad_x.size(0), num_params = params.size(0);
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_cpu", [&] {
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const scalar_t* gx = grad_x.const_data_ptr<scalar_t>();
    const scalar_t* gl = grad_log_det.const_data_ptr<scalar_t>();
    const scalar_t* sp = states.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    const auto bound = static_cast<scalar_t>(config.scale_bound);
    cpu::sum_over_chunks(batch, num_params, grad_params.mutable_data_ptr<scalar_t>(),
                         [&](int64_t begin, int64_t end, scalar_t* sums) {
                           cpu::dispatch<&coupling_tile::backward_samples<scalar_t>>(pp, shape, bound, gx, gl, sp, gz,
                                                                                     sums, begin, end);
                         });
  });
}

}  // namespace pyvi
