"""The Numba sampler's driver: warm-up and sampling of every chain, in groups spread over threads.

Each transition's info goes to the adaptation (dual averaging of the step size) during warm-up and
into the draws afterwards. Chain c uses random stream (seed, c) whatever its group or thread, so
the draws never depend on either. The twin of csrc/core/hmc/driver.hpp.
"""

import numba
import numpy as np

from pyvi._numba.hmc import dual_averaging
from pyvi._numba.hmc.state import Info, Proposal, State
from pyvi._numba.hmc.transition import transition
from pyvi._numba.rng import seed_state
from pyvi._numba.targets import has_fixed_dim, log_prob_and_grad, saved_faces_only

__all__ = ["sample_chains", "run_group", "chain_group", "group_size", "first_non_finite_start", "CHAIN_GROUP"]

#: Chains integrated together by one thread for a target of fixed dimension (kChainGroup in C++).
CHAIN_GROUP = 8


@saved_faces_only
@numba.njit(cache=True)
def first_non_finite_start(target, initial):
    """``(chain, what)``: the first chain (row of ``initial``) where log p (``what`` 1) or its
    gradient (``what`` 2) is not finite, or ``(-1, 0)``. Serial: a parallel region costs
    milliseconds on a busy machine, more than this loop."""
    grad = np.empty(initial.shape[1])
    for c in range(initial.shape[0]):
        if not np.isfinite(log_prob_and_grad(target, initial[c], grad)):
            return c, 1
        for i in range(grad.shape[0]):
            if not np.isfinite(grad[i]):
                return c, 2
    return -1, 0


@numba.njit(cache=True, inline="always")
def _record(samples, log_prob, accept_prob, divergent, num_steps, chain, draw, state, info, w):
    """Lane w's state and info as draw ``draw`` of chain ``chain`` (the arrays of Draws)."""
    for i in range(samples.shape[2]):
        samples[chain, draw, i] = state.x[w, i]
    log_prob[chain, draw] = state.log_prob[w]
    accept_prob[chain, draw] = info.accept_prob[w]
    divergent[chain, draw] = info.divergent[w]
    num_steps[chain, draw] = info.num_steps[w]


@saved_faces_only
@numba.njit(cache=True)
def chain_group(target, settings, initial, first, count, draws, progress, lanes):
    """Chains ``first .. first + count - 1`` as the lanes of one group of width ``lanes``;
    ``progress[0]`` follows the transition being run (for the report of an exception)."""
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
        rngs[w] = seed_state(settings.seed, np.uint64(first + w))
        step_size[w] = settings.step_size
    # Each read of a field of the draws record (an argument) updates a reference count: over 100 ns
    # per draw in the loop below, as much as the rest of a transition. Read them once.
    samples, log_prob, accept_prob = draws.samples, draws.log_prob, draws.accept_prob
    divergent, num_steps = draws.divergent, draws.num_steps
    num_warmup = settings.num_warmup
    for it in range(num_warmup + settings.num_samples):
        progress[0] = it
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


def group_size(target) -> int:
    """Chains per group for the face ``target`` (in Python; the compiled code decides alike)."""
    return CHAIN_GROUP if has_fixed_dim(target) else 1


@saved_faces_only
@numba.njit(cache=True)
def run_group(target, settings, initial, draws, progress, g):
    """Group g's chains (of :func:`group_size` each): a lone chain on the single-lane path, else
    CHAIN_GROUP lanes. ``progress[0]`` follows the transition being run."""
    group = CHAIN_GROUP if has_fixed_dim(target) else 1
    first = g * group
    count = min(group, initial.shape[0] - first)
    if count == 1:  # (the literal count lets LLVM specialise the lane loops: 20% on one chain)
        chain_group(target, settings, initial, first, 1, draws, progress, 1)
    else:
        chain_group(target, settings, initial, first, count, draws, progress, CHAIN_GROUP)


@saved_faces_only
@numba.njit(cache=True)
def _guarded_group(target, settings, initial, draws, progress, failed, g):
    """:func:`run_group` with an exception raised in it (by a user's log density) caught and flagged
    in ``failed[g]``: a prange body ignores an exception, which would leave the group's draws
    unwritten without a word. The caller runs a failed group again, alone, to raise it."""
    try:
        run_group(target, settings, initial, draws, progress[g:g + 1], g)
    except Exception:  # noqa: BLE001  (numba catches only Exception; the caller raises it again)
        failed[g] = True


@saved_faces_only
@numba.njit(cache=True, parallel=True)
def sample_chains(target, settings, initial, draws, progress, failed):
    """Runs one chain per row of ``initial`` (num_chains, d) and fills ``draws`` (a
    :data:`~pyvi._numba.hmc.state.Draws`). A target of fixed dimension runs in groups of
    CHAIN_GROUP chains (a lone chain alone, on the single-lane path); any other one chain at a time.
    ``progress`` and ``failed`` have one entry per group of :func:`group_size` chains: the
    transition each group reached, and whether it stopped on an exception."""
    for g in numba.prange(progress.shape[0]):
        _guarded_group(target, settings, initial, draws, progress, failed, g)
