"""The identity metric (mass matrix): momentum draws, kinetic energy and the position drift.

The one place that knows the mass matrix M: p ~ N(0, M), K(p) = p^T M^-1 p / 2 and the drift
dx/dt = M^-1 p. A diagonal or dense metric replaces these three functions (csrc/core/hmc/metric.hpp
is the C++ twin).

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), Sec. 4.1, arXiv:1206.1901.
"""

import numba

from pyvi._numba.rng import normals

__all__ = ["sample_momentum", "kinetic_energy", "drift"]


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
