// One chain's whole leapfrog trajectory on the banana: half kick, then num_steps times drift,
// gradient, kick (a half kick after the last drift), all in registers.
//
// The torch sampler's plain leapfrog (pyvi/hmc/torch_backend/leapfrog.py) runs these operations
// one tensor op at a time over all chains: per step a drift (addcmul), the fused banana_log_joint
// op and a kick (addcmul), each a pass over (chains, 2) arrays in memory and a dispatch. This is
// the same arithmetic in the same order (half = step * 0.5; x + step * p, then p + kick * grad;
// the gradient of banana_log_joint with its repair). ATen's addcmul rounds `a + b * c` once (an FMA)
// in its AVX2 and AVX-512 kernels (the compiler contracts them) and twice in its DEFAULT one:
// kFma picks the same (the CPU kernel asks ATen which of its kernels runs), so on the CPU a chain
// whose trajectory stays finite ends on the same bits as the plain leapfrog
// (tests/test_hmc_torch_fused.py). On CUDA, where nvcc contracts torch's addcmul as it likes, the
// two agree to rounding. A chain that has ended stands still here instead of being re-evaluated
// where it is (the same values while they are finite; a non-finite trajectory is rejected either
// way).
//
// References:
//   Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), Sec. 2.3, arXiv:1206.1901.
#pragma once

#include <cmath>
#include <cstdint>

#include "banana.h"
#include "macros.h"

namespace pyvi {

/// c + a * b: rounded once (an FMA) with kFma, else twice (the product, then the sum).
template <bool kFma, typename scalar_t>
PYVI_HOST_DEVICE scalar_t leapfrog_update(scalar_t a, scalar_t b, scalar_t c) {
  if constexpr (kFma) {
#ifdef __CUDA_ARCH__
    return ::fma(a, b, c);
#else
    return std::fma(a, b, c);
#endif
  } else {
    const scalar_t product = a * b;
    return c + product;
  }
}

/// Integrates one chain from (x, momentum) with the gradient `grad` at x for num_steps steps of
/// size `step`; overwrites x, momentum and grad with the end point's and returns log p there.
/// num_steps <= 0 leaves x and momentum as they are and evaluates log p and its gradient at x.
template <bool kFma, typename scalar_t>
PYVI_HOST_DEVICE scalar_t banana_trajectory(const BananaParams<scalar_t>& p, scalar_t step, int64_t num_steps,
                                            scalar_t* x, scalar_t* momentum, scalar_t* grad) {
  scalar_t x0 = x[0], x1 = x[1], m0 = momentum[0], m1 = momentum[1];
  scalar_t g[2] = {grad[0], grad[1]};
  scalar_t log_prob;
  if (num_steps <= 0) {
    log_prob = banana_log_joint(p, x0, x1, g);
    banana_repair_gradient(p, x0, x1, g);
  } else {
    const scalar_t half = step * scalar_t(0.5);
    m0 = leapfrog_update<kFma>(half, g[0], m0);
    m1 = leapfrog_update<kFma>(half, g[1], m1);
    for (int64_t s = 0; s < num_steps; ++s) {
      x0 = leapfrog_update<kFma>(step, m0, x0);
      x1 = leapfrog_update<kFma>(step, m1, x1);
      log_prob = banana_log_joint(p, x0, x1, g);
      banana_repair_gradient(p, x0, x1, g);
      const scalar_t kick = s + 1 < num_steps ? step : half;
      m0 = leapfrog_update<kFma>(kick, g[0], m0);
      m1 = leapfrog_update<kFma>(kick, g[1], m1);
    }
  }
  x[0] = x0;
  x[1] = x1;
  momentum[0] = m0;
  momentum[1] = m1;
  grad[0] = g[0];
  grad[1] = g[1];
  return log_prob;
}

}  // namespace pyvi
