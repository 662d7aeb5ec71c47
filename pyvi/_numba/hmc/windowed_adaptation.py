"""Stan's windowed warm-up in Numba: the schedule of slow windows and the metric estimate.

The twin of csrc/core/hmc/windowed_adaptation.hpp (see it for the schedule and the
regularisation M^-1 = (n / (n + 5)) Sigma + 1e-3 (5 / (n + 5)) I).

References:
    Stan, src/stan/mcmc/windowed_adaptation.hpp, welford_var_estimator.hpp,
    welford_covar_estimator.hpp.
"""

import math

import numba
import numpy as np

__all__ = ["schedule", "in_window", "end_of_window", "compute_next_window", "estimator_add", "estimator_finish"]

# Entries of a schedule array (int64): WindowSchedule's fields in C++.
NUM_WARMUP, INIT_BUFFER, TERM_BUFFER, BASE_WINDOW, COUNTER, WINDOW_SIZE, NEXT_WINDOW = range(7)


@numba.njit(cache=True)
def schedule(warmup, init, term, base, enabled):
    """The schedule for ``warmup`` iterations (Stan's fallbacks); all zeros (no window) when not
    ``enabled`` or warmup < 20."""
    s = np.zeros(7, np.int64)
    if not enabled or warmup < 20:
        return s
    if init + base + term > warmup:
        init = np.int64(0.15 * np.float64(warmup))
        term = np.int64(0.1 * np.float64(warmup))
        base = warmup - (init + term)
    s[NUM_WARMUP] = warmup
    s[INIT_BUFFER] = init
    s[TERM_BUFFER] = term
    s[BASE_WINDOW] = base
    s[WINDOW_SIZE] = base
    s[NEXT_WINDOW] = init + base - 1
    return s


@numba.njit(cache=True)
def in_window(s):
    c = s[COUNTER]
    return c >= s[INIT_BUFFER] and c < s[NUM_WARMUP] - s[TERM_BUFFER] and c != s[NUM_WARMUP]


@numba.njit(cache=True)
def end_of_window(s):
    return s[COUNTER] == s[NEXT_WINDOW] and s[COUNTER] != s[NUM_WARMUP]


@numba.njit(cache=True)
def compute_next_window(s):
    last = s[NUM_WARMUP] - s[TERM_BUFFER] - 1
    if s[NEXT_WINDOW] == last:
        return
    s[WINDOW_SIZE] *= 2
    s[NEXT_WINDOW] = s[COUNTER] + s[WINDOW_SIZE]
    if s[NEXT_WINDOW] != last:
        if s[NEXT_WINDOW] + 2 * s[WINDOW_SIZE] >= s[NUM_WARMUP] - s[TERM_BUFFER]:
            s[NEXT_WINDOW] = last


@numba.njit(cache=True)
def estimator_add(count, mean, m2, delta, x, dense):
    """Welford's update with draw x; ``count`` is a (1,) float array (n)."""
    count[0] += 1.0
    n = count[0]
    d = x.shape[0]
    for i in range(d):
        delta[i] = x[i] - mean[i]
        mean[i] += delta[i] / n
    if dense:
        for i in range(d):
            for j in range(d):
                m2[i, j] += (x[i] - mean[i]) * delta[j]
    else:
        for i in range(d):
            m2[0, i] += (x[i] - mean[i]) * delta[i]


@numba.njit(cache=True)
def estimator_finish(count, m2, inv_mass, chol, dense):
    """The regularised estimate into inv_mass (and its Cholesky factor into chol when dense);
    False, both unchanged, when the dense estimate is not positive definite."""
    n = count[0]
    shrink = n / (n + 5.0)
    ridge = 1e-3 * (5.0 / (n + 5.0))
    d = m2.shape[1]
    if not dense:
        for i in range(d):
            inv_mass[0, i] = shrink * (m2[0, i] / (n - 1.0)) + ridge
        return True
    a = np.empty((d, d))
    lower = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1):
            a[i, j] = shrink * (m2[i, j] / (n - 1.0)) + (ridge if i == j else 0.0)
            a[j, i] = a[i, j]
    for j in range(d):
        for i in range(j, d):
            s = a[i, j]
            for k in range(j):
                s -= lower[i, k] * lower[j, k]
            if i == j:
                if not s > 0.0:
                    return False
                lower[j, j] = math.sqrt(s)
            else:
                lower[i, j] = s / lower[j, j]
    for i in range(d):
        for j in range(d):
            inv_mass[i, j] = a[i, j]
            chol[i, j] = lower[i, j]
    return True
