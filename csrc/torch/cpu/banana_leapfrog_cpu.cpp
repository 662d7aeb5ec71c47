// CPU kernel of pyvi::banana_leapfrog: each chain's trajectory in registers, chains in parallel.
//
// The drift and kick round as ATen's addcmul does on this CPU (see ../../common/banana_leapfrog.h):
// once (an FMA, in a function compiled for the FMA instructions) when ATen runs its AVX2 or AVX-512
// kernels, twice when it runs its DEFAULT ones. The fusing copy is reached through cpu/isa.h's
// dispatch (compiled for x86-64-v3, which has the FMA instructions; a baseline copy still fuses,
// through libm's fma). Contraction is off in this file, so that the gradient's arithmetic, inlined
// into that copy, stays that of banana_log_joint's kernel: only the explicit fma() calls fuse.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/core/Tensor.h>

#include <string>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "../banana_leapfrog.h"
#include "isa.h"

namespace pyvi {
namespace {

template <typename scalar_t>
struct Chains {
  BananaParams<scalar_t> params;
  scalar_t* x;
  scalar_t* momentum;
  scalar_t* grad;
  const scalar_t* step_size;
  const int32_t* num_steps;
  scalar_t* log_prob;
};

template <bool kFma, typename scalar_t>
inline void integrate(const Chains<scalar_t>& c, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i)
    c.log_prob[i] = banana_trajectory<kFma>(c.params, c.step_size[i], c.num_steps[i], c.x + 2 * i,
                                            c.momentum + 2 * i, c.grad + 2 * i);
}


/// Whether ATen's elementwise kernels on this CPU round a + b * c once (see the file comment): its
/// AVX2 and AVX-512 kernels (ATEN_CPU_CAPABILITY=default picks the others), fixed at its start.
bool aten_fuses_multiply_add() {
  static const bool fuses = [] {
    const std::string capability = at::get_cpu_capability();
    return capability == "AVX2" || capability == "AVX512";
  }();
  return fuses;
}

}  // namespace

void banana_leapfrog_cpu(const BananaParams<double>& params, at::Tensor& x, at::Tensor& momentum, at::Tensor& grad,
                         const at::Tensor& step_size, const at::Tensor& num_steps, at::Tensor& log_prob) {
  const int64_t chains = x.size(0);
  const bool fma = aten_fuses_multiply_add();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "banana_leapfrog_cpu", [&] {
    const Chains<scalar_t> c{banana_cast<scalar_t>(params),     x.mutable_data_ptr<scalar_t>(),
                             momentum.mutable_data_ptr<scalar_t>(), grad.mutable_data_ptr<scalar_t>(),
                             step_size.const_data_ptr<scalar_t>(),  num_steps.const_data_ptr<int32_t>(),
                             log_prob.mutable_data_ptr<scalar_t>()};
    // A chain costs num_steps gradients (~30 at L = 30): 256 chains are a few microseconds of work.
    at::parallel_for(0, chains, 256, [&](int64_t begin, int64_t end) {
      if (fma) return cpu::dispatch<&integrate<true, scalar_t>>(c, begin, end);
      integrate<false>(c, begin, end);
    });
  });
}

}  // namespace pyvi
