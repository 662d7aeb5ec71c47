// Per-pixel math of the VAE decoder likelihoods, shared by the CPU and CUDA kernels of
// pyvi::bernoulli_log_lik / pyvi::gaussian_log_lik / pyvi::binarize (csrc/torch/vae_likelihood.cpp).
//
// Dynamic binarisation (x ~ Bernoulli(gray level), redrawn every time an image is used) needs
// random bits that do not depend on how the work is spread over threads or devices. They come from
// a counter-based generator: the bit of pixel `index` under `seed` is
//   key = splitmix64(seed),  h = splitmix64 step at state key + index * golden,
//   u = (h >> 40) * 2^-24 in [0, 1) (24 bits, exact in float32),   x = [u < gray].
// That is a pure function of (seed, index), so CPU, CUDA and the torch reference in
// pyvi/vae/likelihood.py draw the same bits, and the likelihood kernels can recompute them in
// registers instead of reading a stored binary image.
//
// Bernoulli log-likelihood from logits l, for target x in [0, 1], in the form that never overflows:
//   log p(x | l) = x l - softplus(l) = x l - max(l, 0) - log1p(exp(-|l|)),
//   d/dl = x - sigmoid(l).
// Gaussian with a learned log-scale (the homework's decoder):
//   log N(x | m, s^2) = -r^2 / 2 - log s - log(2 pi) / 2 with r = (x - m) / s,   d/dm = r / s.
// 1/s = exp(-log s) is applied as two factors (GaussianInvScale) so that r stays exact wherever it
// is representable: one product (x - m) * exp(-log s) gave 0 * inf = NaN at x == m once exp(-log s)
// overflowed (log s < -709 in double, < -88 in float), though log N(m | m, s^2) is finite.
//
// References:
//   Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014 (splitmix64).
//   Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (counter-based RNGs).
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"
#include "rng.h"

namespace pyvi {

/// The per-seed key of the counter-based generator.
PYVI_HOST_DEVICE uint64_t counter_key(uint64_t seed) { return splitmix64_next(seed); }

/// 64 random bits for element `index` under `key` (one splitmix64 output of a Weyl sequence).
PYVI_HOST_DEVICE uint64_t counter_bits(uint64_t key, uint64_t index) {
  uint64_t state = key + index * 0x9E3779B97F4A7C15ULL;
  return splitmix64_next(state);
}

/// The key under which element i is element `offset + i` under `key`: the state is a Weyl sequence,
/// so starting `offset` elements later is adding `offset` golden steps to the key. A part of a batch
/// (a distributed rank's rows) draws its bits with it, the same as the whole batch's.
PYVI_HOST_DEVICE uint64_t counter_key_at(uint64_t key, uint64_t offset) { return key + offset * 0x9E3779B97F4A7C15ULL; }

/// The binarised pixel: 1 with probability `gray` (24-bit uniform, exact in float32 and float64).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t binary_pixel(scalar_t gray, uint64_t key, uint64_t index) {
  const scalar_t u = static_cast<scalar_t>(counter_bits(key, index) >> 40) * scalar_t(5.9604644775390625e-08);
  return u < gray ? scalar_t(1) : scalar_t(0);
}

/// The likelihood's target: the stored pixel, or its Bernoulli draw under dynamic binarisation.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t likelihood_target(scalar_t x, bool dynamic, uint64_t key, uint64_t index) {
  return dynamic ? binary_pixel(x, key, index) : x;
}

/// x l - softplus(l), stable for any l.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t bernoulli_log_prob(scalar_t logit, scalar_t x) {
  const scalar_t positive = logit > scalar_t(0) ? logit : scalar_t(0);
  return x * logit - positive - std::log1p(std::exp(-std::abs(logit)));
}

/// d/dl of bernoulli_log_prob: x - sigmoid(l), with exp of a non-positive number only.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t bernoulli_log_prob_grad(scalar_t logit, scalar_t x) {
  const scalar_t e = std::exp(-std::abs(logit));
  const scalar_t sigmoid = logit >= scalar_t(0) ? scalar_t(1) / (scalar_t(1) + e) : e / (scalar_t(1) + e);
  return x - sigmoid;
}

/// 1/s = exp(-log_scale) = first * second, both finite: while exp(-log_scale) is finite, first is it and
/// second = 1 (r = (x - m) * first, the plain product); beyond, both are exp(-log_scale / 2), clamped to
/// stay finite (where the clamp bites, |r| overflows for every x != m anyway). A NaN log_scale stays NaN.
template <typename scalar_t>
struct GaussianInvScale {
  scalar_t first, second;
};

template <typename scalar_t>
PYVI_HOST_DEVICE GaussianInvScale<scalar_t> gaussian_inv_scale(scalar_t log_scale) {
  // The largest argument whose exp is finite, rounded down: 88 (float), 709 (double).
  constexpr scalar_t log_max = sizeof(scalar_t) == sizeof(float) ? scalar_t(88) : scalar_t(709);
  const scalar_t negative = -log_scale;
  if (negative <= log_max) return {std::exp(negative), scalar_t(1)};
  const scalar_t half_negative = scalar_t(0.5) * negative;
  const scalar_t half = std::exp(half_negative > log_max ? log_max : half_negative);  // NaN passes through
  return {half, half};
}

/// r = (x - m) / s: exact where representable, 0 at x == m whatever the scale.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t gaussian_standardized(scalar_t mean, scalar_t x, GaussianInvScale<scalar_t> inv_scale) {
  return (x - mean) * inv_scale.second * inv_scale.first;
}

/// -r^2 / 2 with r = (x - m) / s: the data-dependent part of log N(x | m, s^2).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t gaussian_log_prob_kernel(scalar_t mean, scalar_t x, GaussianInvScale<scalar_t> inv_scale) {
  const scalar_t r = gaussian_standardized(mean, x, inv_scale);
  return scalar_t(-0.5) * r * r;
}

/// The per-pixel constant of log N(x | m, s^2): -log s - log(2 pi) / 2.
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t gaussian_log_norm(scalar_t log_scale) {
  return -log_scale - scalar_t(0.91893853320467274178032973640562);
}

/// d/dm of log N(x | m, s^2) = (x - m) / s^2 = r / s (0 at x == m whatever the scale).
template <typename scalar_t>
PYVI_HOST_DEVICE scalar_t gaussian_log_prob_grad(scalar_t mean, scalar_t x, GaussianInvScale<scalar_t> inv_scale) {
  return gaussian_standardized(mean, x, inv_scale) * inv_scale.second * inv_scale.first;
}

}  // namespace pyvi
