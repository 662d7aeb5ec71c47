"""xoshiro256++ seeded through splitmix64, and Marsaglia's polar normals, in Numba.

A statement-for-statement twin of ``csrc/common/rng.h``: stream ``(seed, chain)`` yields the same
numbers here as in C++. The state is a ``uint64[4]`` array owned by the caller.

References:
    Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 47 (2021),
    arXiv:1805.01407. Marsaglia & Bray, "A convenient method for generating normal variables",
    SIAM Review 6 (1964).
"""

import numba
import numpy as np

__all__ = ["seed_state", "next_uint64", "uniform", "normals"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)
_U1, _U11, _U17, _U23, _U27, _U30, _U31, _U41, _U45 = (np.uint64(k) for k in (1, 11, 17, 23, 27, 30, 31, 41, 45))
_INV_2_53 = 1.0 / 9007199254740992.0


@numba.njit(cache=True, inline="always")
def _rotl(x, k, k_complement):
    return (x << k) | (x >> k_complement)


@numba.njit(cache=True)
def seed_state(seed, stream):
    """The xoshiro256++ state of stream ``stream`` of generator ``seed`` (both uint64)."""
    state = np.empty(4, dtype=np.uint64)
    key = np.uint64(seed) ^ (_STREAM * (np.uint64(stream) + _U1))
    for i in range(4):
        key = key + _GOLDEN
        z = key
        z = (z ^ (z >> _U30)) * _MIX1
        z = (z ^ (z >> _U27)) * _MIX2
        state[i] = z ^ (z >> _U31)
    return state


@numba.njit(cache=True, inline="always")
def next_uint64(s):
    result = _rotl(s[0] + s[3], _U23, _U41) + s[0]
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45, np.uint64(19))
    return result


@numba.njit(cache=True, inline="always")
def uniform(s):
    """Uniform on [0, 1) with 53 random bits."""
    return np.float64(next_uint64(s) >> _U11) * _INV_2_53


@numba.njit(cache=True)
def normals(s, out):
    """Fills ``out`` with standard normals, drawn in polar-method pairs (the last odd one dropped)."""
    n = out.shape[0]
    for i in range(0, n, 2):
        while True:
            u = 2.0 * uniform(s) - 1.0
            v = 2.0 * uniform(s) - 1.0
            r2 = u * u + v * v
            if r2 < 1.0 and r2 != 0.0:
                break
        f = np.sqrt(-2.0 * np.log(r2) / r2)
        out[i] = u * f
        if i + 1 < n:
            out[i + 1] = v * f
