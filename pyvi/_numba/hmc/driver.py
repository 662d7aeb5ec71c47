"""The Numba sampler's driver: warm-up and sampling of every chain, in groups spread over threads.

Each transition's info goes to the adaptation (dual averaging of the step size) during warm-up and
into the draws afterwards. Chain c uses random stream (seed, first_chain + c) whatever its group or
thread, so the draws never depend on either (first_chain: where a process's share of a distributed
run starts, pyvi/distributed.py). The twin of csrc/core/hmc/driver.hpp.
"""

import numba
import numpy as np

from pyvi._numba.hmc import dual_averaging
from pyvi._numba.hmc.state import Info, Proposal, State
from pyvi._numba.hmc.transition import transition
from pyvi._numba.rng import seed_state
from pyvi._numba.targets import has_fixed_dim, log_prob_and_grad

__all__ = ["sample_chains", "first_non_finite_start", "CHAIN_GROUP"]

#: Chains integrated together by one thread for a target of fixed dimension (kChainGroup in C++).
CHAIN_GROUP = 8


@numba.njit(cache=True)
def first_non_finite_start(target, initial):
    """The first chain (row of ``initial``) where log p is not finite, or -1. Serial: a parallel
    region costs milliseconds on a busy machine, more than this loop."""
    grad = np.empty(initial.shape[1])
    for c in range(initial.shape[0]):
        if not np.isfinite(log_prob_and_grad(target, initial[c], grad)):
            return c
    return -1


@numba.njit(cache=True, inline="always")
def _record(samples, log_prob, accept_prob, divergent, num_steps, chain, draw, state, info, w):
    """Lane w's state and info as draw ``draw`` of chain ``chain`` (the arrays of Draws)."""
    for i in range(samples.shape[2]):
        samples[chain, draw, i] = state.x[w, i]
    log_prob[chain, draw] = state.log_prob[w]
    accept_prob[chain, draw] = info.accept_prob[w]
    divergent[chain, draw] = info.divergent[w]
    num_steps[chain, draw] = info.num_steps[w]


@numba.njit(cache=True)
def _chain_group(target, settings, initial, first, count, draws, lanes):
    """Chains ``first .. first + count - 1`` as the lanes of one group of width ``lanes``."""
    numba.literally(lanes)
    d = initial.shape[1]
    state = State(np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros(lanes))
    proposal = Proposal(np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros(lanes),
                        np.zeros(lanes), np.zeros(lanes, np.int64))
    info = Info(np.zeros(lanes), np.zeros(lanes), np.zeros(lanes, np.bool_), np.zeros(lanes, np.int64))
    rngs = np.empty((lanes, 4), np.uint64)
    step_size = np.zeros(lanes)  # padding lanes integrate with step 0
    adaptation = dual_averaging.start(settings.step_size, lanes)
    for w in range(count):
        for i in range(d):
            state.x[w, i] = initial[first + w, i]
        state.log_prob[w] = log_prob_and_grad(target, state.x[w], state.grad[w])
        rngs[w] = seed_state(settings.seed, np.uint64(settings.first_chain + first + w))
        step_size[w] = settings.step_size
    # Each read of a field of the draws record (an argument) updates a reference count: over 100 ns
    # per draw in the loop below, as much as the rest of a transition. Read them once.
    samples, log_prob, accept_prob = draws.samples, draws.log_prob, draws.accept_prob
    divergent, num_steps = draws.divergent, draws.num_steps
    num_warmup = settings.num_warmup
    for it in range(num_warmup + settings.num_samples):
        transition(target, settings, rngs, state, proposal, step_size, info, count, lanes)
        for w in range(count):
            if it < num_warmup:
                if settings.adapt_step_size:
                    step_size[w] = dual_averaging.update(adaptation, w, info.accept_prob[w], settings)
                    if it + 1 == num_warmup:
                        step_size[w] = dual_averaging.final_step(adaptation, w)
                continue
            _record(samples, log_prob, accept_prob, divergent, num_steps, first + w, it - num_warmup, state, info, w)
    for w in range(count):
        draws.step_size[first + w] = step_size[w]


@numba.njit(cache=True, parallel=True)
def sample_chains(target, settings, initial, draws):
    """Runs one chain per row of ``initial`` (num_chains, d) and fills ``draws`` (a
    :data:`~pyvi._numba.hmc.state.Draws`). A target of fixed dimension runs in groups of
    CHAIN_GROUP chains (a lone chain alone, on the single-lane path); any other one chain at a time."""
    num_chains = initial.shape[0]
    group = CHAIN_GROUP if has_fixed_dim(target) else 1
    num_groups = (num_chains + group - 1) // group
    for g in numba.prange(num_groups):
        first = g * group
        count = min(group, num_chains - first)
        if count == 1:
            _chain_group(target, settings, initial, first, 1, draws, 1)
        else:
            _chain_group(target, settings, initial, first, count, draws, CHAIN_GROUP)
