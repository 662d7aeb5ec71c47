// Counter-seeded per-stream random numbers: xoshiro256++ seeded through splitmix64.
//
// Every HMC chain owns one stream, keyed by (seed, chain index), so a run's draws depend only on
// the seed and never on how chains are spread over threads. pyvi/_numba/rng.py implements the
// same generator bit for bit, which is what lets the C++ and Numba samplers be compared draw by
// draw in the tests.
//
// References:
//   Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 47 (2021),
//   arXiv:1805.01407. Marsaglia & Bray, "A convenient method for generating normal variables",
//   SIAM Review 6 (1964) (the polar method).
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"

namespace pyvi {

PYVI_HOST_DEVICE uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

PYVI_HOST_DEVICE uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

struct Xoshiro256pp {
  uint64_t s[4];

  /// Stream `stream` of generator `seed`: the splitmix64 sequence started at a key mixing both.
  PYVI_HOST_DEVICE Xoshiro256pp(uint64_t seed, uint64_t stream) {
    uint64_t key = seed ^ (0xD1B54A32D192ED03ULL * (stream + 1));
    for (auto& word : s) word = splitmix64_next(key);
  }

  PYVI_HOST_DEVICE uint64_t next() {
    const uint64_t result = rotl64(s[0] + s[3], 23) + s[0];
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
  }

  /// Uniform on [0, 1) with 53 random bits.
  PYVI_HOST_DEVICE double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Two independent standard normals by Marsaglia's polar method (no trigonometry, so the Numba
  /// twin reproduces it exactly with the same libm).
  PYVI_HOST_DEVICE void normal_pair(double& z0, double& z1) {
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    z0 = u * f;
    z1 = v * f;
  }

  /// Fills out[0..n) with standard normals, drawing pairs and dropping the last odd one.
  PYVI_HOST_DEVICE void normals(double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
      double z0, z1;
      normal_pair(z0, z1);
      out[i] = z0;
      if (i + 1 < n) out[i + 1] = z1;
    }
  }
};

}  // namespace pyvi
