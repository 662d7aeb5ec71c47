"""Nesterov dual averaging of log(step size) towards a target acceptance rate, per lane, as in Stan.

The same arithmetic as csrc/core/hmc/dual_averaging.hpp, with its settings.

References:
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Algorithm 5, arXiv:1111.4246.
"""

import math
from typing import NamedTuple

import numba
import numpy as np

__all__ = ["DualAveraging", "start", "update", "final_step", "load", "store"]


class DualAveraging(NamedTuple):
    """The adaptation state of each lane."""

    mu: np.ndarray  # shrinkage point, log(10 * initial step size)
    log_step: np.ndarray  # the iterate used for the next transition
    log_step_bar: np.ndarray  # its weighted average: the step size after warm-up
    h_bar: np.ndarray  # running mean of (delta - accept)
    count: np.ndarray  # t


@numba.njit(cache=True)
def start(step_size, lanes):
    return DualAveraging(np.full(lanes, math.log(10.0 * step_size)), np.full(lanes, math.log(step_size)),
                         np.zeros(lanes), np.zeros(lanes), np.zeros(lanes))


@numba.njit(cache=True, inline="always")
def update(state, w, accept_prob, settings):
    """Feeds lane w's acceptance statistic of one warm-up transition; returns its next step size.
    ``settings`` gives delta (``target_accept``) and the constants gamma, kappa, t0, max_log_step."""
    state.count[w] += 1.0
    count = state.count[w]
    eta = 1.0 / (count + settings.t0)
    state.h_bar[w] = (1.0 - eta) * state.h_bar[w] + eta * (settings.target_accept - accept_prob)
    log_step = state.mu[w] - math.sqrt(count) / settings.gamma * state.h_bar[w]
    state.log_step[w] = min(max(log_step, -settings.max_log_step), settings.max_log_step)
    weight = count ** (-settings.kappa)
    state.log_step_bar[w] = weight * state.log_step[w] + (1.0 - weight) * state.log_step_bar[w]
    return math.exp(state.log_step[w])


@numba.njit(cache=True, inline="always")
def final_step(state, w):
    """Lane w's step size to sample with once warm-up is over."""
    return math.exp(state.log_step_bar[w]) if state.count[w] > 0.0 else math.exp(state.log_step[w])


@numba.njit(cache=True, inline="always")
def load(state, w, chains, c):
    """Lane w's adaptation from chain c's fields of a :class:`~pyvi._numba.hmc.state.Chains`."""
    state.mu[w] = chains.mu[c]
    state.log_step[w] = chains.log_step[c]
    state.log_step_bar[w] = chains.log_step_bar[c]
    state.h_bar[w] = chains.h_bar[c]
    state.count[w] = chains.count[c]


@numba.njit(cache=True, inline="always")
def store(state, w, chains, c):
    """Lane w's adaptation into chain c's fields of a :class:`~pyvi._numba.hmc.state.Chains`."""
    chains.mu[c] = state.mu[w]
    chains.log_step[c] = state.log_step[w]
    chains.log_step_bar[c] = state.log_step_bar[w]
    chains.h_bar[c] = state.h_bar[w]
    chains.count[c] = state.count[w]
