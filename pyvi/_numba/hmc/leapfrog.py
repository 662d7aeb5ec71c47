"""The leapfrog integrator of the Numba sampler, for a group of chains: the only one in this backend.

Half kicks at both ends and full kicks between drifts, so L steps cost L gradient evaluations and
the gradient at the start is reused from the previous transition. ``lanes`` (a compile-time
constant) chains are integrated together, step by step: one chain's leapfrog is a chain of
dependent floating-point operations, and several independent ones in one loop body keep the
core's pipelines busy; one lane is the single-chain case. Each lane's arithmetic is the same
whatever the others, so a chain's draws never depend on its group. Statement for statement the
twin of csrc/core/hmc/leapfrog.hpp. ``fastmath`` stays off: energies are compared.

For a target of fixed dimension the lanes are integrated on stack copies that LLVM keeps in
registers (:mod:`pyvi._numba.registers`); otherwise in place.

References:
    Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), Sec. 2.3, arXiv:1206.1901.
"""

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from pyvi._numba.hmc.metric import drift
from pyvi._numba.registers import MATRIX, emit_borrowed_matrix, emit_stack_matrix
from pyvi._numba.targets import fixed_dim_of, has_fixed_dim, log_prob_and_grad, saved_faces_only

__all__ = ["leapfrog", "integrate"]


@intrinsic
def _registers(typingctx, target, lane_values, lanes):
    """Where to integrate ``lane_values`` (lanes, d): an uninitialised (lanes, D) stack matrix for a
    target of fixed dimension D (copied in and out by the caller), else ``lane_values`` itself,
    borrowed (no reference counting of its rows)."""
    if not isinstance(lanes, types.IntegerLiteral) or lane_values != MATRIX:
        return None
    dim = fixed_dim_of(target)
    num_lanes = lanes.literal_value

    def codegen(context, builder, signature, args):
        if dim is None:
            return emit_borrowed_matrix(context, builder, args[1], num_lanes)
        return emit_stack_matrix(context, builder, num_lanes, dim)

    return MATRIX(target, lane_values, lanes), codegen


@numba.njit(cache=True, inline="always")
def leapfrog(target, x, p, grad, step_size, num_steps, log_prob, count, lanes):
    """Integrates lanes ``0 .. count - 1`` in place, lane w for ``num_steps[w]`` steps of
    ``step_size[w]``; on entry ``grad`` holds the gradient of log p at ``x``, on exit x, p, grad are
    the end points and ``log_prob[w]`` is log p there.

    Args:
        target: a registered target face (pyvi._numba.targets).
        x, p, grad: ``(lanes, d)`` float64; rows ``count ..`` are padding (zeros, left as they are).
        step_size: ``(lanes,)``; 0 in padding lanes.
        num_steps: ``(lanes,)`` int64; 0 in padding lanes.
        log_prob: ``(lanes,)`` output.
        count: real lanes, 1 <= count <= lanes.
        lanes: the group's width W, a compile-time constant: the leapfrog is inlined into a
            function compiled per W (the driver's group), where ``lanes`` is a literal.

    Inlined (``inline="always"``), as the transition is: a call updates the reference count of
    each array argument, two atomic operations each, which cost as much as the rest of a
    banana transition.
    """
    staged = has_fixed_dim(target)
    xs = _registers(target, x, lanes)
    ps = _registers(target, p, lanes)
    gs = _registers(target, grad, lanes)
    d = xs.shape[1]
    if staged:
        for w in range(lanes):
            for i in range(d):
                xs[w, i] = x[w, i]
                ps[w, i] = p[w, i]
                gs[w, i] = grad[w, i]
    longest = 0
    same_length = count == lanes
    for w in range(lanes):
        half = 0.5 * step_size[w]
        for i in range(d):
            ps[w, i] += half * gs[w, i]
        longest = max(longest, num_steps[w])
        same_length = same_length and num_steps[w] == num_steps[0]
    if same_length:  # fixed path length: no per-lane test
        for step in range(longest):
            last = step + 1 == longest
            for w in range(lanes):
                eps = step_size[w]
                drift(xs[w], ps[w], eps)
                log_prob[w] = log_prob_and_grad(target, xs[w], gs[w])
                kick = 0.5 * eps if last else eps
                for i in range(d):
                    ps[w, i] += kick * gs[w, i]
    else:
        for step in range(longest):
            for w in range(lanes):
                if step >= num_steps[w]:
                    continue  # this lane's path is shorter (random_steps), or it is padding
                eps = step_size[w]
                drift(xs[w], ps[w], eps)
                log_prob[w] = log_prob_and_grad(target, xs[w], gs[w])
                kick = eps if step + 1 < num_steps[w] else 0.5 * eps
                for i in range(d):
                    ps[w, i] += kick * gs[w, i]
    if staged:
        for w in range(count):
            for i in range(d):
                x[w, i] = xs[w, i]
                p[w, i] = ps[w, i]
                grad[w, i] = gs[w, i]


@saved_faces_only
@numba.njit(cache=True)
def integrate(target, x, p, step_size, num_steps):
    """:func:`leapfrog` on one lane from Python (``pyvi.hmc.leapfrog``): ``num_steps`` steps from
    (x, p) (1-D, updated in place), the gradient at x computed first; returns log p at the end.
    (The leapfrog itself is inlined into its callers, with its lane count a compile-time constant.)"""
    d = x.shape[0]
    xs, ps, gs = x.reshape((1, d)), p.reshape((1, d)), np.empty((1, d))
    log_prob = np.empty(1)
    log_prob[0] = log_prob_and_grad(target, x, gs[0])
    if num_steps > 0:
        leapfrog(target, xs, ps, gs, np.full(1, step_size), np.full(1, num_steps), log_prob, 1, 1)
    return log_prob[0]
