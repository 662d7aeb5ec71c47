"""The Numba sampler's driver: warm-up and sampling of every chain, in groups spread over threads,
advanced in chunks of iterations.

Each transition's info goes to the adaptation (dual averaging of the step size) during warm-up and
into the draws afterwards. Every chain's state, stream, step size and adaptation live in a
:class:`~pyvi._numba.hmc.state.Chains` record between chunks (:func:`start`, then :func:`advance`
for each chunk, called from Python: pyvi/hmc/chunks.py), so a chain's arithmetic, and its draws,
never depend on where a run is cut. Chain c uses random stream (seed, first_chain + c) whatever its
group or thread (first_chain: where a process's share of a distributed run starts,
pyvi/distributed.py). The twin of csrc/core/hmc/driver.hpp.

A user's log density (:class:`pyvi.targets.NumbaTarget`) may raise, which a prange body cannot
pass on: :func:`advance` catches it per group and flags the group, whose chains stay where the
chunk began; pyvi/hmc/native.py then runs that group's chunk again alone (:func:`run_group`), where
the exception reaches Python, and says where it happened.
"""

import math

import numba
import numpy as np

from pyvi._numba.hmc import dual_averaging
from pyvi._numba.hmc.state import Chains, Info, Proposal, State
from pyvi._numba.hmc.transition import transition
from pyvi._numba.rng import seed_state
from pyvi._numba.targets import has_fixed_dim, log_prob_and_grad, saved_faces_only

__all__ = ["start", "advance", "run_group", "group_size", "CHAIN_GROUP"]

#: Chains integrated together by one thread for a target of fixed dimension (kChainGroup in C++).
CHAIN_GROUP = 8


@saved_faces_only
@numba.njit(cache=True)
def start(target, settings, initial):
    """Every chain at its row of ``initial`` (num_chains, d), with log p and its gradient there (the
    caller checks that log p is finite), its stream, the initial step size and a fresh adaptation.
    Serial: a parallel region costs milliseconds on a busy machine, more than this loop."""
    num_chains, d = initial.shape
    chains = Chains(initial.copy(), np.empty((num_chains, d)), np.empty(num_chains),
                    np.empty((num_chains, 4), np.uint64), np.full(num_chains, settings.step_size),
                    np.full(num_chains, math.log(10.0 * settings.step_size)),
                    np.full(num_chains, math.log(settings.step_size)), np.zeros(num_chains), np.zeros(num_chains),
                    np.zeros(num_chains))
    for c in range(num_chains):
        chains.log_prob[c] = log_prob_and_grad(target, chains.x[c], chains.grad[c])
        chains.rng[c] = seed_state(settings.seed, np.uint64(settings.first_chain + c))
    return chains


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
def chain_group(target, settings, chains, first, count, draws, begin, end, progress, lanes):
    """Iterations [begin, end) of chains ``first .. first + count - 1``, the lanes of one group of
    width ``lanes``: loaded from ``chains``, run, stored back. ``progress[0]`` follows the
    transition being run (for the report of an exception raised by a user's log density, which
    leaves ``chains`` as they were at ``begin``)."""
    numba.literally(lanes)
    d = chains.x.shape[1]
    state = State(np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros(lanes))
    proposal = Proposal(np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros((lanes, d)), np.zeros(lanes),
                        np.zeros(lanes), np.zeros(lanes, np.int64))
    info = Info(np.zeros(lanes), np.zeros(lanes), np.zeros(lanes, np.bool_), np.zeros(lanes, np.int64))
    rngs = np.empty((lanes, 4), np.uint64)
    step_size = np.zeros(lanes)  # padding lanes integrate with step 0
    adaptation = dual_averaging.start(settings.step_size, lanes)
    for w in range(count):
        c = first + w
        for i in range(d):
            state.x[w, i] = chains.x[c, i]
            state.grad[w, i] = chains.grad[c, i]
        state.log_prob[w] = chains.log_prob[c]
        rngs[w] = chains.rng[c]
        step_size[w] = chains.step_size[c]
        dual_averaging.load(adaptation, w, chains, c)
    # Each read of a field of the draws record (an argument) updates a reference count: over 100 ns
    # per draw in the loop below, as much as the rest of a transition. Read them once.
    samples, log_prob, accept_prob = draws.samples, draws.log_prob, draws.accept_prob
    divergent, num_steps = draws.divergent, draws.num_steps
    num_warmup = settings.num_warmup
    # Warm-up and sampling as two loops: no test of the phase per iteration.
    for it in range(begin, min(end, num_warmup)):
        progress[0] = it
        transition(target, settings, rngs, state, proposal, step_size, info, count, lanes)
        if settings.adapt_step_size:
            for w in range(count):
                step_size[w] = dual_averaging.update(adaptation, w, info.accept_prob[w], settings)
                if it + 1 == num_warmup:
                    step_size[w] = dual_averaging.final_step(adaptation, w)
    for it in range(max(begin, num_warmup), end):
        progress[0] = it
        transition(target, settings, rngs, state, proposal, step_size, info, count, lanes)
        for w in range(count):
            _record(samples, log_prob, accept_prob, divergent, num_steps, first + w, it - num_warmup, state, info, w)
    for w in range(count):
        c = first + w
        for i in range(d):
            chains.x[c, i] = state.x[w, i]
            chains.grad[c, i] = state.grad[w, i]
        chains.log_prob[c] = state.log_prob[w]
        chains.rng[c] = rngs[w]
        chains.step_size[c] = step_size[w]
        dual_averaging.store(adaptation, w, chains, c)
        draws.step_size[c] = step_size[w]


def group_size(target) -> int:
    """Chains per group for the face ``target`` (in Python; the compiled code decides alike)."""
    return CHAIN_GROUP if has_fixed_dim(target) else 1


@saved_faces_only
@numba.njit(cache=True)
def run_group(target, settings, chains, draws, begin, end, progress, g):
    """Iterations [begin, end) of group g's chains (of :func:`group_size` each): a lone chain on the
    single-lane path, else CHAIN_GROUP lanes. ``progress[0]`` follows the transition being run."""
    group = CHAIN_GROUP if has_fixed_dim(target) else 1
    first = g * group
    count = min(group, chains.x.shape[0] - first)
    if count == 1:  # (the literal count lets LLVM specialise the lane loops: 20% on one chain)
        chain_group(target, settings, chains, first, 1, draws, begin, end, progress, 1)
    else:
        chain_group(target, settings, chains, first, count, draws, begin, end, progress, CHAIN_GROUP)


@saved_faces_only
@numba.njit(cache=True)
def _guarded_group(target, settings, chains, draws, begin, end, progress, failed, g):
    """:func:`run_group` with an exception raised in it (by a user's log density) caught and flagged
    in ``failed[g]``: a prange body ignores an exception, which would leave the group's draws
    unwritten without a word. The caller runs a failed group's chunk again, alone, to raise it."""
    try:
        run_group(target, settings, chains, draws, begin, end, progress[g:g + 1], g)
    except Exception:  # noqa: BLE001  (numba catches only Exception; the caller raises it again)
        failed[g] = True


@saved_faces_only
@numba.njit(cache=True, parallel=True)
def advance(target, settings, chains, draws, begin, end, progress, failed):
    """Runs iterations [begin, end) of every chain of ``chains`` (a
    :class:`~pyvi._numba.hmc.state.Chains`, updated) into ``draws`` (a
    :data:`~pyvi._numba.hmc.state.Draws`). A target of fixed dimension runs in groups of
    CHAIN_GROUP chains (a lone chain alone, on the single-lane path); any other one chain at a time.
    ``progress`` and ``failed`` have one entry per group of :func:`group_size` chains: the
    transition each group reached, and whether it stopped on an exception (its chains then stay
    at ``begin``)."""
    for g in numba.prange(progress.shape[0]):
        _guarded_group(target, settings, chains, draws, begin, end, progress, failed, g)
