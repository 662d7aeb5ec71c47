// CPU kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE and RealNVP stacks): the
// per-sample math of ../common/coupling.h, evaluated on tiles of interleaved samples
// (coupling_tile_cpu.h) in parallel; parameter gradients reduced per fixed chunk of samples, then
// chunk by chunk in order (deterministic for any thread count). Backward of wide conditioners:
// batch GEMMs.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ATen.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "../common/coupling.h"
#include "coupling_tile_cpu.h"
#include "flows.h"
#include "no_cuda.h"

namespace pyvi {

namespace {

CouplingShape make_shape(int64_t dim, int64_t num_couplings, int64_t hidden, int64_t depth, bool affine) {
  return {static_cast<int>(dim), static_cast<int>(num_couplings), static_cast<int>(hidden), static_cast<int>(depth),
          affine};
}

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

MlpViews mlp_views(const at::Tensor& flat, int64_t offset, int64_t din, int64_t hidden, int64_t depth,
                   int64_t num_out) {
  MlpViews views;
  int64_t at = offset;
  for (int64_t l = 0; l <= depth; ++l) {
    const int64_t rows = l == depth ? num_out : hidden, cols = l == 0 ? din : hidden;
    views.weights.push_back(flat.narrow(0, at, rows * cols).view({rows, cols}));
    at += rows * cols;
    views.biases.push_back(flat.narrow(0, at, rows));
    at += rows;
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

std::tuple<at::Tensor, at::Tensor> coupling_backward_gemm(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                                          const at::Tensor& params, const at::Tensor& states,
                                                          const CouplingShape& s, double bound) {
  const int64_t dim = s.dim;
  at::Tensor g = grad_x.clone();
  at::Tensor grad_params = at::zeros_like(params);
  int64_t offset = coupling_num_params(s) - (s.affine ? 0 : dim);
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
    const int64_t num_out = mn * (s.affine ? 2 : 1);
    const at::Tensor input = states.select(1, k);
    const at::Tensor cond = input.narrow(1, cs, cn).contiguous();
    const MlpViews mlp = mlp_views(params, offset, cn, s.hidden, s.depth, num_out);
    const MlpViews grads = mlp_views(grad_params, offset, cn, s.hidden, s.depth, num_out);
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
  return {g, grad_params};
}

// -- narrow conditioners: tiles of interleaved samples (coupling_tile_cpu.h) ------------------
//
// The tile loops are compiled twice: for the build's baseline ISA and, on x86-64 with GCC/Clang,
// for AVX2 + FMA (4 doubles per instruction instead of SSE2's 2, fused multiply-adds), chosen at
// run time by what the CPU supports. The choice depends on the machine only, never on the thread
// count, so results stay bit-identical across thread counts (the AVX2 build contracts a * b + c
// into FMAs, so its results differ from the baseline build's in the last bits).

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define PYVI_COUPLING_AVX2 1
template <typename T>
__attribute__((target("avx2,fma"), flatten)) void forward_tiles_avx2(const T* params, const CouplingShape& s,
                                                                      T bound, const T* z, T* x, T* log_det,
                                                                      T* states, int64_t batch, int64_t tile_begin,
                                                                      int64_t tile_end) {
  coupling_tile::forward_tiles(params, s, bound, z, x, log_det, states, batch, tile_begin, tile_end);
}

template <typename T>
__attribute__((target("avx2,fma"), flatten)) void backward_samples_avx2(const T* params, const CouplingShape& s,
                                                                         T bound, const T* grad_x,
                                                                         const T* grad_log_det, const T* states,
                                                                         T* grad_z, T* grad, int64_t begin,
                                                                         int64_t end) {
  coupling_tile::backward_samples(params, s, bound, grad_x, grad_log_det, states, grad_z, grad, begin, end);
}

bool cpu_has_avx2_fma() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}
#endif

template <typename T>
void forward_tiles_best(const T* params, const CouplingShape& s, T bound, const T* z, T* x, T* log_det, T* states,
                        int64_t batch, int64_t tile_begin, int64_t tile_end) {
#ifdef PYVI_COUPLING_AVX2
  if (cpu_has_avx2_fma())
    return forward_tiles_avx2(params, s, bound, z, x, log_det, states, batch, tile_begin, tile_end);
#endif
  coupling_tile::forward_tiles(params, s, bound, z, x, log_det, states, batch, tile_begin, tile_end);
}

template <typename T>
void backward_samples_best(const T* params, const CouplingShape& s, T bound, const T* grad_x, const T* grad_log_det,
                           const T* states, T* grad_z, T* grad, int64_t begin, int64_t end) {
#ifdef PYVI_COUPLING_AVX2
  if (cpu_has_avx2_fma())
    return backward_samples_avx2(params, s, bound, grad_x, grad_log_det, states, grad_z, grad, begin, end);
#endif
  coupling_tile::backward_samples(params, s, bound, grad_x, grad_log_det, states, grad_z, grad, begin, end);
}

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
    const int64_t num_tiles = (batch + coupling_tile::kLanes - 1) / coupling_tile::kLanes;
    at::parallel_for(0, num_tiles, 8, [&](int64_t tile_begin, int64_t tile_end) {
      forward_tiles_best(pp, shape, bound, zp, xp, lp, sp, batch, tile_begin, tile_end);
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
  if (hidden >= kGemmMinHidden) return coupling_backward_gemm(grad_x, grad_log_det, params, states, shape, scale_bound);
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
    const int64_t num_chunks = (batch + kGradChunk - 1) / kGradChunk;
    // Chunk 0 sums straight into grad_params; the others into scratch, added in chunk order.
    std::vector<scalar_t> partial(static_cast<size_t>(std::max<int64_t>(num_chunks - 1, 0) * num_params));
    for (int64_t j = 0; j < num_params; ++j) gp[j] = scalar_t(0);
    at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
        scalar_t* sums = chunk == 0 ? gp : partial.data() + (chunk - 1) * num_params;
        if (chunk > 0)
          for (int64_t j = 0; j < num_params; ++j) sums[j] = scalar_t(0);
        backward_samples_best(pp, shape, bound, gx, gl, sp, gz, sums, chunk * kGradChunk,
                              std::min(batch, (chunk + 1) * kGradChunk));
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
