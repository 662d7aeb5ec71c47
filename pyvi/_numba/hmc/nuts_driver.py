"""The Numba NUTS driver: each chain's warm-up (dual averaging, the metric in Stan's windows) and
sampling, one compiled call per chain and chunk of iterations (without the GIL) on a pool of Python
threads; also static HMC with a diagonal or dense metric. The twin of csrc/core/hmc/nuts_driver.hpp:
:func:`start` makes every chain's record, :func:`advance` runs iterations [begin, end) of each.

Not a ``prange``: a parallel region compiles the whole chain a second time (its arguments take
other array types inside the parallel region), doubling the minute a cold compile costs; a chain is
long enough that a thread per chain from Python costs nothing measurable.

References:
    Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithms 4 and 6, arXiv:1111.4246.
    Stan, src/stan/mcmc/hmc/base_hmc.hpp (init_stepsize), adapt_diag_e_nuts.hpp.
"""

import math
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np

from pyvi._backend import require
from pyvi._numba.hmc import dual_averaging
from pyvi._numba.hmc import windowed_adaptation as windows
from pyvi._numba.hmc.metric import DENSE, IDENTITY, Metric, metric_kinetic_energy, metric_sample_momentum
from pyvi._numba.hmc.metric_transition import static_transition
from pyvi._numba.hmc.nuts import (ACCEPT_PROB, DIVERGENT, ENERGY, ENERGY_ERROR, NUM_STEPS, TREE_DEPTH, leapfrog_step,
                                  nuts_transition, workspace)
from pyvi._numba.registers import borrowed
from pyvi._numba.rng import seed_state
from pyvi._numba.targets import log_prob_and_grad

__all__ = ["NutsSettings", "NutsDraws", "Chains", "start", "advance"]


class NutsSettings(NamedTuple):
    """One NUTS run's settings (validated by pyvi.hmc) and the constants it reads from pyvi._core."""

    num_samples: int
    num_warmup: int
    thin: int
    save_warmup: bool
    step_size: float
    max_tree_depth: int
    metric: int  # IDENTITY, DIAG or DENSE
    adapt_step_size: bool
    adapt_metric: bool
    target_accept: float
    max_energy_error: float
    seed: np.uint64
    init_buffer: int
    term_buffer: int
    base_window: int
    static_hmc: bool  # the kernel: static HMC with num_steps (random_steps) instead of NUTS
    num_steps: int
    random_steps: bool
    gamma: float
    kappa: float
    t0: float
    max_log_step: float
    first_chain: int = 0  # these chains are first_chain, first_chain + 1, ... of a larger run


#: The outputs, as ``pyvi._core.nuts_draws`` allocates them.
NutsDraws = __import__("collections").namedtuple("NutsDraws", require("cpp").nuts_outputs)


@numba.njit(cache=True)
def _find_initial_step(target, metric, rng, x0, g0, lp0, step_size, x, p, g):
    """Stan's init_stepsize (nuts_driver.hpp's find_initial_step)."""
    if not step_size > 0.0 or step_size > 1e7:
        return step_size
    log_08 = math.log(0.8)
    direction = 0
    while True:
        for i in range(x.shape[0]):
            x[i] = x0[i]
            g[i] = g0[i]
        metric_sample_momentum(metric, rng, p)
        h0 = -lp0 + metric_kinetic_energy(metric, p)
        lp = leapfrog_step(target, metric, x, p, g, step_size)
        h = -lp + metric_kinetic_energy(metric, p)
        if not math.isfinite(h):
            h = np.inf
        dh = h0 - h
        if direction == 0:
            direction = 1 if dh > log_08 else -1
            continue
        if direction == 1 and not dh > log_08:
            break
        if direction == -1 and not dh < log_08:
            break
        following = 2.0 * step_size if direction == 1 else 0.5 * step_size
        if not following > 0.0 or following > 1e7:
            break
        step_size = following
    return step_size


@numba.njit(cache=True)
def _record(draws, chain, row, x, log_prob, info):
    for i in range(x.shape[0]):
        draws.samples[chain, row, i] = x[i]
    draws.log_prob[chain, row] = log_prob
    draws.accept_prob[chain, row] = info[ACCEPT_PROB]
    draws.divergent[chain, row] = info[DIVERGENT] != 0.0
    draws.num_steps[chain, row] = np.int32(info[NUM_STEPS])
    draws.tree_depth[chain, row] = np.int32(info[TREE_DEPTH])
    draws.energy[chain, row] = info[ENERGY]
    draws.energy_error[chain, row] = info[ENERGY_ERROR]


class Chains(NamedTuple):
    """Every chain between chunks of iterations (NutsChain in C++), one row per chain: the state,
    stream, metric, warm-up schedule, estimator, dual averaging and step size."""

    x: np.ndarray  # (C, d)
    grad: np.ndarray  # (C, d)
    log_prob: np.ndarray  # (C, 1)
    rng: np.ndarray  # (C, 4) uint64
    inv_mass: np.ndarray  # (C, d, d) dense, else (C, 1, d)
    chol: np.ndarray  # (C, d, d) dense, else (C, 1, 1)
    schedule: np.ndarray  # (C, 7) int64 (windowed_adaptation's entries)
    count: np.ndarray  # (C, 1) the estimator's n
    mean: np.ndarray  # (C, d)
    m2: np.ndarray  # (C, d, d) dense, else (C, 1, d)
    delta: np.ndarray  # (C, d) scratch
    step_size: np.ndarray  # (C,)
    adaptation: dual_averaging.DualAveraging  # one lane per chain
    iteration: np.ndarray  # (C,) int64: the transition each chain is in (or has finished), for error notes


@numba.njit(cache=True)
def start(target, s, initial):
    """Every chain's record, its start evaluated (log p may be non-finite: the caller checks)."""
    num_chains, d = initial.shape
    dense = s.metric == DENSE
    inv_mass = np.zeros((num_chains, d, d)) if dense else np.ones((num_chains, 1, d))
    chol = np.zeros((num_chains, d, d)) if dense else np.zeros((num_chains, 1, 1))
    schedule = np.zeros((num_chains, 7), np.int64)
    rng = np.empty((num_chains, 4), np.uint64)
    x = initial.copy()
    grad = np.empty((num_chains, d))
    log_prob = np.empty((num_chains, 1))
    for c in range(num_chains):
        if dense:
            for i in range(d):
                inv_mass[c, i, i] = 1.0
                chol[c, i, i] = 1.0
        schedule[c] = windows.schedule(s.num_warmup, s.init_buffer, s.term_buffer, s.base_window,
                                       s.adapt_metric and s.metric != IDENTITY)
        rng[c] = seed_state(s.seed, np.uint64(s.first_chain + c))
        log_prob[c, 0] = log_prob_and_grad(target, x[c], grad[c])
    m2 = np.zeros((num_chains, d, d)) if dense else np.zeros((num_chains, 1, d))
    return Chains(x, grad, log_prob, rng, inv_mass, chol, schedule, np.zeros((num_chains, 1)),
                  np.zeros((num_chains, d)), m2, np.zeros((num_chains, d)), np.full(num_chains, s.step_size),
                  dual_averaging.start(s.step_size, num_chains), np.zeros(num_chains, np.int64))


@numba.njit(cache=True, inline="always")
def _restart(adaptation, c, step_size):
    """Lane c of dual averaging started afresh from step_size (dual_averaging.start's values)."""
    adaptation.mu[c] = math.log(10.0 * step_size)
    adaptation.log_step[c] = math.log(step_size)
    adaptation.log_step_bar[c] = 0.0
    adaptation.h_bar[c] = 0.0
    adaptation.count[c] = 0.0


@numba.njit(cache=True, nogil=True)
def advance_chain(target, s, chains, c, begin, end, draws):
    """Iterations [begin, end) of chain c (advance_chain in C++)."""
    d = chains.x.shape[1]
    _advance_chain(target, s, chains, c, begin, end, draws, workspace(d, s.max_tree_depth), np.empty((3, d)))


@numba.njit(cache=True)
def _advance_chain(target, s, chains, c, begin, end, draws, ws, scratch):
    """advance_chain with its workspace and scratch rows (owned by the caller for the call)."""
    # Every array below is borrowed, without reference counts: each leapfrog step passes the
    # target's, the metric's and the state's arrays through several functions (registers.borrowed).
    target, chains, draws, ws, scratch = borrowed(target), borrowed(chains), borrowed(draws), borrowed(ws), \
        borrowed(scratch)
    dense = s.metric == DENSE
    metric = Metric(s.metric, chains.inv_mass[c], chains.chol[c])
    x, grad, log_prob, rng = chains.x[c], chains.grad[c], chains.log_prob[c], chains.rng[c]
    schedule, count, mean, m2, delta = chains.schedule[c], chains.count[c], chains.mean[c], chains.m2[c], chains.delta[c]
    adaptation = chains.adaptation
    xs, ps, gs = scratch[0], scratch[1], scratch[2]
    step_size = chains.step_size[c]
    first_sample_row = (s.num_warmup + s.thin - 1) // s.thin if s.save_warmup else 0
    for it in range(begin, end):
        chains.iteration[c] = it
        if it == 0 and s.adapt_step_size and s.num_warmup > 0:
            step_size = _find_initial_step(target, metric, rng, x, grad, log_prob[0], step_size, xs, ps, gs)
            _restart(adaptation, c, step_size)
        if s.static_hmc:
            static_transition(target, metric, ws, rng, x, grad, log_prob, step_size, s.num_steps, s.random_steps,
                              s.max_energy_error)
        else:
            nuts_transition(target, metric, ws, rng, x, grad, log_prob, step_size, s.max_tree_depth,
                            s.max_energy_error)
        if it < s.num_warmup:
            if s.save_warmup and it % s.thin == 0:
                _record(draws, c, it // s.thin, x, log_prob[0], ws.info)
            if s.adapt_step_size:
                step_size = dual_averaging.update(adaptation, c, ws.info[ACCEPT_PROB], s)
            if schedule[windows.NUM_WARMUP] > 0:
                if windows.in_window(schedule):
                    windows.estimator_add(count, mean, m2, delta, x, dense)
                if windows.end_of_window(schedule):
                    windows.compute_next_window(schedule)
                    windows.estimator_finish(count, m2, metric.inv_mass, metric.chol, dense)
                    count[0] = 0.0
                    mean[:] = 0.0
                    m2[:] = 0.0
                    if s.adapt_step_size:
                        step_size = _find_initial_step(target, metric, rng, x, grad, log_prob[0], step_size, xs, ps,
                                                       gs)
                        _restart(adaptation, c, step_size)
                schedule[windows.COUNTER] += 1
            if s.adapt_step_size and it + 1 == s.num_warmup:
                step_size = dual_averaging.final_step(adaptation, c)
            continue
        draw = it - s.num_warmup
        if draw % s.thin == 0:
            _record(draws, c, first_sample_row + draw // s.thin, x, log_prob[0], ws.info)
    chains.step_size[c] = step_size
    # The step size and metric so far (after the last chunk: the adapted ones).
    draws.step_size[c] = step_size
    draws.inv_metric[c] = metric.inv_mass


def _advance_one(target, settings, chains, c: int, begin: int, end: int, draws) -> None:
    """advance_chain, with a note naming the chain and transition on an exception of the target's
    log density (a compiled call without a prange: the exception itself reaches Python)."""
    try:
        advance_chain(target, settings, chains, c, begin, end, draws)
    except Exception as error:
        it = int(chains.iteration[c])
        phase = "warm-up" if it < settings.num_warmup else "sampling"
        error.add_note(f"(raised by the target's log density in chain {settings.first_chain + c}, transition {it} "
                       f"({phase}), backend 'numba'; the run's draws were discarded)")
        raise


def advance(target, settings, chains, draws, begin: int, end: int, num_threads: int = 1) -> None:
    """Iterations [begin, end) of every chain on ``num_threads`` threads; ``draws`` is a
    :data:`NutsDraws` whose ``inv_metric`` is (num_chains, d, d) for a dense metric, else a
    (num_chains, 1, d) view: one array type for every metric. An exception of the target's log
    density is raised (the first chain's, of those that raised) once every chain has stopped."""
    num_chains = chains.x.shape[0]
    if num_threads <= 1 or num_chains == 1:
        for c in range(num_chains):
            _advance_one(target, settings, chains, c, begin, end, draws)
        return
    with ThreadPoolExecutor(max_workers=min(num_threads, num_chains)) as pool:
        futures = [pool.submit(_advance_one, target, settings, chains, c, begin, end, draws)
                   for c in range(num_chains)]
    for future in futures:
        future.result()
