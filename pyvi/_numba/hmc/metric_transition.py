"""One static-HMC transition of one chain with its own metric: the twin of
csrc/core/hmc/metric_transition.hpp (the per-chain driver's kernel for kernel="hmc" with a diagonal
or dense metric).

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
"""

import math

import numba
import numpy as np

from pyvi._numba.hmc.metric import metric_kinetic_energy, metric_sample_momentum
from pyvi._numba.hmc.nuts import ACCEPT_PROB, DIVERGENT, ENERGY, ENERGY_ERROR, NUM_STEPS, TREE_DEPTH, leapfrog_step
from pyvi._numba.rng import uniform

__all__ = ["static_transition"]


@numba.njit(cache=True)
def static_transition(target, metric, ws, rng, x, grad, log_prob, step_size, num_steps, random_steps,
                      max_energy_error):
    """Moves (x, grad, log_prob[0]) one transition on, in place; statistics into ``ws.info``."""
    if random_steps:
        length = 1 + np.int64(uniform(rng) * np.float64(num_steps))
    else:
        length = num_steps
    xs, p, g = ws.x_end[1], ws.p_end[1], ws.g_end[1]
    metric_sample_momentum(metric, rng, p)
    h0 = -log_prob[0] + metric_kinetic_energy(metric, p)
    xs[:] = x
    g[:] = grad
    lp = log_prob[0]
    for _ in range(length):
        lp = leapfrog_step(target, metric, xs, p, g, step_size)
    h = -lp + metric_kinetic_energy(metric, p)
    if not math.isfinite(h):  # overflow, NaN or log p = +inf: the extreme of divergence, rejected
        h = np.inf
    energy_error = h - h0
    accept_prob = 1.0 if energy_error <= 0.0 else math.exp(-energy_error)
    info = ws.info
    info[ENERGY] = h0
    if uniform(rng) < accept_prob:
        x[:] = xs
        grad[:] = g
        log_prob[0] = lp
        info[ENERGY] = h
    info[ACCEPT_PROB] = accept_prob
    info[ENERGY_ERROR] = energy_error
    info[DIVERGENT] = 1.0 if energy_error > max_energy_error else 0.0
    info[NUM_STEPS] = length
    info[TREE_DEPTH] = 0.0
