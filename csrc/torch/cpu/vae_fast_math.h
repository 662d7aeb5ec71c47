// Vectorised float32 exp / log1p for the CPU Bernoulli likelihood kernels (the CUDA kernels use
// the device's own exp / log1p through ../../common/vae_likelihood.h, and float64 keeps libm so that
// gradcheck's finite differences see the exact function).
//
// std::exp and std::log1p are scalar libm calls, so a pixel loop that calls them runs one pixel at
// a time. These are branch-free Cephes polynomials (expf / logf coefficients, about 3e-7 absolute
// error on the ranges used) written with GCC / Clang vector extensions on 8 floats, so the compiler
// emits packed instructions whatever the FP flags (with plain scalar code GCC's default
// -ftrapping-math keeps the selects as branches and nothing vectorises). Rows longer than a
// multiple of 8 finish with the scalar shared math.
//
// References:
//   S. L. Moshier, Cephes Mathematical Library (expf.c, logf.c), 1984-1992.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../common/vae_likelihood.h"
#include "isa.h"

// The row functions below are kernel bodies for isa.h's dispatch: vae_likelihood_cpu.cpp runs them
// in the x86-64-v3 copy (AVX2 + FMA) on CPUs that have it (the baseline copy is ~8x slower here).
// The helpers are always inlined into them, so each copy gets its own instruction set and no
// 32-byte vector ever crosses a call.

namespace pyvi::fast {

typedef float vfloat __attribute__((vector_size(32)));
typedef int32_t vint __attribute__((vector_size(32)));
constexpr int kWidth = 8;

PYVI_ALWAYS_INLINE vfloat broadcast(float value) { return vfloat{} + value; }

PYVI_ALWAYS_INLINE vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

PYVI_ALWAYS_INLINE void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }

/// exp(x) for x <= 0 (x below -87 gives exp(-87) ~ 1.6e-38 rather than a denormal or 0).
PYVI_ALWAYS_INLINE vfloat exp_nonpositive(vfloat x) {
  x = x < -87.0f ? broadcast(-87.0f) : x;
  // Round x / ln 2 to the nearest integer with the 1.5 * 2^23 trick (exact for |v| < 2^22).
  const vfloat n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  vfloat r = x - n * 0.693359375f;  // ln 2 in two parts so that r stays exact
  r = r - n * -2.12194440e-4f;
  vfloat p = broadcast(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vfloat y = p * r * r + r + 1.0f;
  const vint exponent = (__builtin_convertvector(n, vint) + 127) << 23;
  return y * (vfloat)exponent;
}

/// log1p(e) for e in [0, 1]: 1 + e = 2^k (1 + f) with f in [sqrt(1/2) - 1, sqrt(2) - 1], k in {0, 1}.
PYVI_ALWAYS_INLINE vfloat log1p_unit(vfloat e) {
  const vint halve = e > 0.41421356237f;
  const vfloat f = halve ? (e - 1.0f) * 0.5f : e;  // (1 + e) / 2 - 1 is exact
  const vfloat z = f * f;
  vfloat y = broadcast(7.0376836292e-2f);
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z - 0.5f * z;
  return f + y + (halve ? broadcast(0.693147180559945309f) : broadcast(0.0f));
}

PYVI_ALWAYS_INLINE vfloat abs(vfloat v) { return v < 0.0f ? -v : v; }

/// x l - softplus(l) = x l - max(l, 0) - log1p(exp(-|l|)), 8 pixels at a time.
PYVI_ALWAYS_INLINE vfloat bernoulli_log_prob(vfloat logit, vfloat x) {
  const vfloat positive = logit > 0.0f ? logit : broadcast(0.0f);
  return x * logit - positive - log1p_unit(exp_nonpositive(-abs(logit)));
}

/// x - sigmoid(l), 8 pixels at a time.
PYVI_ALWAYS_INLINE vfloat bernoulli_log_prob_grad(vfloat logit, vfloat x) {
  const vfloat e = exp_nonpositive(-abs(logit));
  const vfloat inv = 1.0f / (1.0f + e);
  return x - (logit >= 0.0f ? inv : e * inv);
}

/// sum_d log p(x_d | logits_d) over one row of pixels.
inline float bernoulli_row(const float* logits, const float* x, int64_t pixels) {
  vfloat acc = broadcast(0.0f);
  int64_t d = 0;
  for (; d + kWidth <= pixels; d += kWidth) acc += bernoulli_log_prob(load(logits + d), load(x + d));
  float total = 0.0f;
  for (; d < pixels; ++d) total += pyvi::bernoulli_log_prob(logits[d], x[d]);
  for (int j = 0; j < kWidth; ++j) total += acc[j];
  return total;
}

/// out[d] = grad * (x[d] - sigmoid(logits[d])) over one row of pixels.
inline void bernoulli_grad_row(float grad, const float* logits, const float* x, float* out,
                                               int64_t pixels) {
  int64_t d = 0;
  for (; d + kWidth <= pixels; d += kWidth)
    store(out + d, grad * bernoulli_log_prob_grad(load(logits + d), load(x + d)));
  for (; d < pixels; ++d) out[d] = grad * pyvi::bernoulli_log_prob_grad(logits[d], x[d]);
}

}  // namespace pyvi::fast
