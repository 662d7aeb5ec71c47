// CPU kernels of pyvi::coupling_forward / pyvi::coupling_backward (NICE and RealNVP stacks): the
// per-sample math of ../../common/coupling.h, evaluated on tiles of interleaved samples
// (coupling_tile_cpu.h) in parallel, compiled for the CPU's instruction set (isa.h); parameter
// gradients reduced per fixed chunk of samples, then chunk by chunk in order (chunked_sum.h:
// deterministic for any thread count). Backward of wide conditioners: coupling_wide_cpu.h (blocked
// outer products in a fixed order, no BLAS, whose reductions depend on the thread count).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include "../coupling.h"
#include "chunked_sum.h"
#include "coupling_tile_cpu.h"
#include "coupling_wide_cpu.h"
#include "isa.h"

namespace pyvi {
namespace {

/// Width from which the CPU backward runs the wide kernels (coupling_wide_cpu.h): from there on their
/// blocked outer products beat the tile backward's per-tile lane reductions.
constexpr int kWideMinHidden = 16;

}  // namespace

// Every kernel runs in the copy compiled for the CPU's instruction set up to x86-64-v3 (isa.h: AVX2 +
// FMA, 4 doubles per instruction instead of SSE2's 2). The choice depends on the machine only, never
// on the thread count; the v3 copy contracts a * b + c into FMAs, so its last bits differ from the
// baseline's.

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
  const int64_t batch = grad_x.size(0), num_params = params.size(0);
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_cpu", [&] {
    const scalar_t* pp = params.const_data_ptr<scalar_t>();
    const scalar_t* gx = grad_x.const_data_ptr<scalar_t>();
    const scalar_t* gl = grad_log_det.const_data_ptr<scalar_t>();
    const scalar_t* sp = states.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    const auto bound = static_cast<scalar_t>(config.scale_bound);
    const bool wide = shape.hidden >= kWideMinHidden;
    cpu::sum_over_chunks(batch, num_params, grad_params.mutable_data_ptr<scalar_t>(),
                         [&](int64_t begin, int64_t end, scalar_t* sums) {
                           if (wide)
                             cpu::dispatch<&coupling_wide::backward_chunk<scalar_t>>(pp, shape, bound, gx, gl, sp, gz,
                                                                                     sums, begin, end);
                           else
                             cpu::dispatch<&coupling_tile::backward_samples<scalar_t>>(pp, shape, bound, gx, gl, sp,
                                                                                       gz, sums, begin, end);
                         });
  });
}

}  // namespace pyvi
