"""The metric (mass matrix M): momentum draws, kinetic energy, velocity and the position drift.

The one place that knows M: p ~ N(0, M), K(p) = p^T M^-1 p / 2 and the drift dx/dt = M^-1 p
(the velocity). The static sampler's lanes use the identity functions (``sample_momentum``,
``kinetic_energy``, ``drift``). A chain with its own metric (NUTS) carries a :class:`Metric`
record and calls the ``metric_*`` functions: its kind (identity, diagonal, dense) is a run-time
value, so one compiled sampler serves all three. Operation for operation the twin of
csrc/core/hmc/metric.hpp.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), Sec. 4.1, arXiv:1206.1901.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), Sec. 4.2,
    arXiv:1701.02434.
"""

import math
from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.rng import normals

__all__ = ["sample_momentum", "kinetic_energy", "drift", "Metric", "IDENTITY", "DIAG", "DENSE", "metric_sample_momentum",
           "metric_kinetic_energy", "metric_velocity", "metric_drift"]

#: The kinds of metric (MetricKind in C++).
IDENTITY, DIAG, DENSE = 0, 1, 2


@numba.njit(cache=True, inline="always")
def sample_momentum(rng, p):
    """p ~ N(0, I), from the chain's stream."""
    normals(rng, p)


@numba.njit(cache=True, inline="always")
def kinetic_energy(p):
    """|p|^2 / 2."""
    s = 0.0
    for i in range(p.shape[0]):
        s += p[i] * p[i]
    return 0.5 * s


@numba.njit(cache=True, inline="always")
def drift(x, p, step_size):
    """x += step_size * p."""
    for i in range(x.shape[0]):
        x[i] += step_size * p[i]


class Metric(NamedTuple):
    """A chain's metric: its kind and M^-1 (row 0 of ``inv_mass`` for a diagonal one, the d x d
    matrix for a dense one, with ``chol`` its lower Cholesky factor L, M^-1 = L L^T)."""

    kind: int
    inv_mass: np.ndarray  # (1, d) or (d, d)
    chol: np.ndarray  # (d, d) when dense, else (1, 1)


# The metric's operations run once or more per leapfrog step of the per-chain driver (NUTS's): inlined
# (numba IR inlining), their array arguments are not passed through a call with its reference counts
# (2026-12-02: with nuts.py's step helpers inlined too, the Numba NUTS took 25-38% less time on the
# funnel, banana and eight schools; the cold compile was unchanged, 28 s against 30 s).
@numba.njit(cache=True, inline="always")
def metric_sample_momentum(metric, rng, p):
    """p ~ N(0, M): z / sqrt(M^-1) (diagonal), L^-T z (dense), z ~ N(0, I)."""
    normals(rng, p)
    d = p.shape[0]
    if metric.kind == DIAG:
        inv = metric.inv_mass[0]
        for i in range(d):
            p[i] = p[i] / math.sqrt(inv[i])
    elif metric.kind == DENSE:
        chol = metric.chol
        for i in range(d - 1, -1, -1):
            s = p[i]
            for j in range(i + 1, d):
                s -= chol[j, i] * p[j]
            p[i] = s / chol[i, i]


@numba.njit(cache=True, inline="always")
def metric_kinetic_energy(metric, p):
    """p^T M^-1 p / 2."""
    d = p.shape[0]
    s = 0.0
    if metric.kind == IDENTITY:
        for i in range(d):
            s += p[i] * p[i]
    elif metric.kind == DIAG:
        inv = metric.inv_mass[0]
        for i in range(d):
            s += inv[i] * p[i] * p[i]
    else:
        inv = metric.inv_mass
        for i in range(d):
            row = 0.0
            for j in range(d):
                row += inv[i, j] * p[j]
            s += p[i] * row
    return 0.5 * s


@numba.njit(cache=True, inline="always")
def metric_velocity(metric, p, v):
    """v = M^-1 p."""
    d = p.shape[0]
    if metric.kind == IDENTITY:
        for i in range(d):
            v[i] = p[i]
    elif metric.kind == DIAG:
        inv = metric.inv_mass[0]
        for i in range(d):
            v[i] = inv[i] * p[i]
    else:
        inv = metric.inv_mass
        for i in range(d):
            row = 0.0
            for j in range(d):
                row += inv[i, j] * p[j]
            v[i] = row


@numba.njit(cache=True, inline="always")
def metric_drift(metric, x, p, step_size):
    """x += step_size * M^-1 p."""
    d = x.shape[0]
    if metric.kind == IDENTITY:
        for i in range(d):
            x[i] += step_size * p[i]
    elif metric.kind == DIAG:
        inv = metric.inv_mass[0]
        for i in range(d):
            x[i] += step_size * (inv[i] * p[i])
    else:
        inv = metric.inv_mass
        for i in range(d):
            row = 0.0
            for j in range(d):
                row += inv[i, j] * p[j]
            x[i] += step_size * row
