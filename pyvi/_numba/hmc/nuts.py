"""One No-U-Turn transition of one chain, in Numba: the twin of csrc/core/hmc/nuts.hpp.

Multinomial sampling of the trajectory and the generalised no-U-turn criterion with the checks
across merged subtrees, as Stan's base_nuts.hpp, built iteratively leaf by leaf in the order of
Stan's recursion (see the C++ file's head): the same random numbers, the same arithmetic, the
same draws.

References:
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), arXiv:1111.4246.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), Appendix A,
    arXiv:1701.02434.
"""

import math
from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.hmc.metric import metric_drift, metric_kinetic_energy, metric_sample_momentum, metric_velocity
from pyvi._numba.registers import borrowed
from pyvi._numba.rng import uniform
from pyvi._numba.targets import log_prob_and_grad

__all__ = ["Workspace", "workspace", "nuts_transition", "leapfrog_step", "log_sum_exp"]

# Rows of Workspace.edges: momentum and velocity at the ends of the backward and forward subtrees.
P_BB, S_BB, P_BF, S_BF, P_FB, S_FB, P_FF, S_FF = range(8)
# Rows of Workspace.rho: the trajectory's summed momenta, its backward and forward parts, scratch.
RHO, RHO_BCK, RHO_FWD, RHO_EXT = range(4)
# Entries of Workspace.info (a NUTS transition's statistics, NutsInfo in C++).
ACCEPT_PROB, ENERGY, ENERGY_ERROR, DIVERGENT, NUM_STEPS, TREE_DEPTH = range(6)


class Workspace(NamedTuple):
    """A chain's NUTS scratch, allocated once (NutsWorkspace in C++)."""

    x_end: np.ndarray  # (2, d) the trajectory's ends, 0 backward, 1 forward
    p_end: np.ndarray  # (2, d)
    g_end: np.ndarray  # (2, d)
    lp_end: np.ndarray  # (2,)
    x_sample: np.ndarray  # (d,) the selected point
    g_sample: np.ndarray  # (d,)
    sample: np.ndarray  # (2,) its log p and H
    edges: np.ndarray  # (8, d) rows P_BB .. S_FF
    rho: np.ndarray  # (4, d) rows RHO .. RHO_EXT
    x_prop: np.ndarray  # (slots, d) each slot's subtree: its proposal
    g_prop: np.ndarray  # (slots, d)
    lp_prop: np.ndarray  # (slots,)
    h_prop: np.ndarray  # (slots,)
    log_weight: np.ndarray  # (slots,)
    rho_slot: np.ndarray  # (slots, d)
    p_first: np.ndarray  # (slots, d) momentum and velocity at its first and last points
    s_first: np.ndarray  # (slots, d)
    p_last: np.ndarray  # (slots, d)
    s_last: np.ndarray  # (slots, d)
    waiting: np.ndarray  # (slots,) int64: the slot of the initial half at each height
    free_slots: np.ndarray  # (slots,) int64
    info: np.ndarray  # (6,) the last transition's statistics, entries ACCEPT_PROB .. TREE_DEPTH


@numba.njit(cache=True)
def workspace(d, max_depth):
    slots = max_depth + 1
    return Workspace(np.zeros((2, d)), np.zeros((2, d)), np.zeros((2, d)), np.zeros(2), np.zeros(d), np.zeros(d),
                     np.zeros(2), np.zeros((8, d)), np.zeros((4, d)), np.zeros((slots, d)), np.zeros((slots, d)),
                     np.zeros(slots), np.zeros(slots), np.zeros(slots), np.zeros((slots, d)), np.zeros((slots, d)),
                     np.zeros((slots, d)), np.zeros((slots, d)), np.zeros((slots, d)), np.zeros(slots, np.int64),
                     np.zeros(slots, np.int64), np.zeros(6))


# The helpers of every leaf of the tree are inlined (see the metric's operations in metric.py: why).
@numba.njit(cache=True, inline="always")
def log_sum_exp(a, b):
    """log(exp(a) + exp(b)), exact when a is -inf (Stan's math::log_sum_exp)."""
    if a == -np.inf:
        return b
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@numba.njit(cache=True, inline="always")
def _dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@numba.njit(cache=True, inline="always")
def _criterion(v_minus, v_plus, rho):
    return _dot(v_plus, rho) > 0.0 and _dot(v_minus, rho) > 0.0


# The tree copies rows element by element: numba's slice assignment (dst[r][:] = src) first checks
# the two arrays for overlap, which costs more than the copy at these sizes (2026-12-02: the funnel's
# and eight schools' NUTS 2-9% faster).
@numba.njit(cache=True, inline="always")
def _set_row(dst, r, src):
    """dst[r] = src."""
    for i in range(src.shape[0]):
        dst[r, i] = src[i]


@numba.njit(cache=True, inline="always")
def _copy_row(dst, r, src, s):
    """dst[r] = src[s]."""
    for i in range(dst.shape[1]):
        dst[r, i] = src[s, i]


@numba.njit(cache=True, inline="always")
def leapfrog_step(target, metric, x, p, g, eps):
    """One kick-drift-kick step of signed size eps, in place; returns log p at the end."""
    half = 0.5 * eps
    for i in range(x.shape[0]):
        p[i] += half * g[i]
    metric_drift(metric, x, p, eps)
    log_prob = log_prob_and_grad(target, x, g)
    for i in range(x.shape[0]):
        p[i] += half * g[i]
    return log_prob


@numba.njit(cache=True)
def _build_tree(target, metric, ws, rng, e, height, eps, h0, max_energy_error):
    """A subtree of 2^height steps from end e (0 backward, 1 forward): its slot, or -1 when it is
    invalid. Tallies steps, summed acceptance (ws.info[ACCEPT_PROB]) and divergence."""
    metric, ws = borrowed(metric), borrowed(ws)  # (the caller holds them; see registers.borrowed)
    info = ws.info
    num_slots = ws.free_slots.shape[0]
    num_free = num_slots
    for s in range(num_slots):
        ws.free_slots[s] = num_slots - 1 - s
    x, p, g = ws.x_end[e], ws.p_end[e], ws.g_end[e]
    rho_ext = ws.rho[RHO_EXT]
    num_leaves = np.int64(1) << height
    for leaf in range(num_leaves):
        log_prob = leapfrog_step(target, metric, x, p, g, eps)
        ws.lp_end[e] = log_prob
        info[NUM_STEPS] += 1.0
        h = -log_prob + metric_kinetic_energy(metric, p)
        if not math.isfinite(h):  # NaN, or log p = +inf: the extreme of divergence
            h = np.inf
        if h - h0 > max_energy_error:
            info[DIVERGENT] = 1.0
        info[ACCEPT_PROB] += 1.0 if h0 - h > 0.0 else math.exp(h0 - h)
        num_free -= 1
        cur = ws.free_slots[num_free]
        _set_row(ws.x_prop, cur, x)
        _set_row(ws.g_prop, cur, g)
        ws.lp_prop[cur] = log_prob
        ws.h_prop[cur] = h
        ws.log_weight[cur] = h0 - h
        metric_velocity(metric, p, ws.s_first[cur])
        _copy_row(ws.s_last, cur, ws.s_first, cur)
        _set_row(ws.rho_slot, cur, p)
        _set_row(ws.p_first, cur, p)
        _set_row(ws.p_last, cur, p)
        if info[DIVERGENT] != 0.0:
            return -1
        k = 0
        while k < height and (leaf >> k) & 1:
            init = ws.waiting[k]
            w_subtree = log_sum_exp(ws.log_weight[init], ws.log_weight[cur])
            take_final = ws.log_weight[cur] > w_subtree
            if not take_final:
                take_final = uniform(rng) < math.exp(ws.log_weight[cur] - w_subtree)
            if take_final:
                _copy_row(ws.x_prop, init, ws.x_prop, cur)
                _copy_row(ws.g_prop, init, ws.g_prop, cur)
                ws.lp_prop[init] = ws.lp_prop[cur]
                ws.h_prop[init] = ws.h_prop[cur]
            ws.log_weight[init] = w_subtree
            rho_init, rho_final = ws.rho_slot[init], ws.rho_slot[cur]
            p_first_final, p_last_init = ws.p_first[cur], ws.p_last[init]
            for i in range(rho_ext.shape[0]):
                rho_ext[i] = rho_init[i] + p_first_final[i]
            persist = _criterion(ws.s_first[init], ws.s_first[cur], rho_ext)
            for i in range(rho_ext.shape[0]):
                rho_ext[i] = rho_final[i] + p_last_init[i]
            persist = _criterion(ws.s_last[init], ws.s_last[cur], rho_ext) and persist
            for i in range(rho_ext.shape[0]):
                rho_init[i] = rho_init[i] + rho_final[i]
            persist = _criterion(ws.s_first[init], ws.s_last[cur], rho_init) and persist
            _copy_row(ws.p_last, init, ws.p_last, cur)
            _copy_row(ws.s_last, init, ws.s_last, cur)
            ws.free_slots[num_free] = cur
            num_free += 1
            cur = init
            if not persist:
                return -1
            k += 1
        if leaf + 1 < num_leaves:
            k = 0
            while (leaf >> k) & 1:
                k += 1
            ws.waiting[k] = cur
        else:
            return cur
    return -1


@numba.njit(cache=True)
def nuts_transition(target, metric, ws, rng, x, grad, log_prob, step_size, max_depth, max_energy_error):
    """One NUTS transition of one chain from (x, grad, log_prob[0]), all updated in place; the
    statistics go to ``ws.info`` (entries ACCEPT_PROB .. TREE_DEPTH)."""
    info = ws.info
    for k in range(6):
        info[k] = 0.0
    edges, rho = ws.edges, ws.rho
    p0 = ws.p_end[1]
    metric_sample_momentum(metric, rng, p0)
    for e in range(2):
        ws.x_end[e][:] = x
        ws.g_end[e][:] = grad
        ws.lp_end[e] = log_prob[0]
    ws.p_end[0][:] = p0
    h0 = -log_prob[0] + metric_kinetic_energy(metric, p0)
    metric_velocity(metric, p0, edges[S_FF])
    edges[S_FB][:] = edges[S_FF]
    edges[S_BF][:] = edges[S_FF]
    edges[S_BB][:] = edges[S_FF]
    edges[P_FF][:] = p0
    edges[P_FB][:] = p0
    edges[P_BF][:] = p0
    edges[P_BB][:] = p0
    rho[RHO][:] = p0
    ws.x_sample[:] = x
    ws.g_sample[:] = grad
    ws.sample[0] = log_prob[0]
    ws.sample[1] = h0
    log_sum_weight = 0.0
    depth = 0
    while depth < max_depth:
        forward = uniform(rng) > 0.5
        if forward:
            rho[RHO_BCK][:] = rho[RHO]
            edges[P_BF][:] = edges[P_FF]
            edges[S_BF][:] = edges[S_FF]
        else:
            rho[RHO_FWD][:] = rho[RHO]
            edges[P_FB][:] = edges[P_BB]
            edges[S_FB][:] = edges[S_BB]
        e = 1 if forward else 0
        sub = _build_tree(target, metric, ws, rng, e, depth, step_size if forward else -step_size, h0,
                          max_energy_error)
        if sub < 0:
            break
        if forward:
            rho[RHO_FWD][:] = ws.rho_slot[sub]
            edges[P_FB][:] = ws.p_first[sub]
            edges[S_FB][:] = ws.s_first[sub]
            edges[P_FF][:] = ws.p_last[sub]
            edges[S_FF][:] = ws.s_last[sub]
        else:
            rho[RHO_BCK][:] = ws.rho_slot[sub]
            edges[P_BF][:] = ws.p_first[sub]
            edges[S_BF][:] = ws.s_first[sub]
            edges[P_BB][:] = ws.p_last[sub]
            edges[S_BB][:] = ws.s_last[sub]
        depth += 1
        w_subtree = ws.log_weight[sub]
        take = w_subtree > log_sum_weight
        if not take:
            take = uniform(rng) < math.exp(w_subtree - log_sum_weight)
        if take:
            ws.x_sample[:] = ws.x_prop[sub]
            ws.g_sample[:] = ws.g_prop[sub]
            ws.sample[0] = ws.lp_prop[sub]
            ws.sample[1] = ws.h_prop[sub]
        log_sum_weight = log_sum_exp(log_sum_weight, w_subtree)
        r, r_bck, r_fwd, r_ext = rho[RHO], rho[RHO_BCK], rho[RHO_FWD], rho[RHO_EXT]
        for i in range(r.shape[0]):
            r[i] = r_bck[i] + r_fwd[i]
        persist = _criterion(edges[S_BB], edges[S_FF], r)
        p_fb, p_bf = edges[P_FB], edges[P_BF]
        for i in range(r.shape[0]):
            r_ext[i] = r_bck[i] + p_fb[i]
        persist = _criterion(edges[S_BB], edges[S_FB], r_ext) and persist
        for i in range(r.shape[0]):
            r_ext[i] = r_fwd[i] + p_bf[i]
        persist = _criterion(edges[S_BF], edges[S_FF], r_ext) and persist
        if not persist:
            break
    info[ACCEPT_PROB] = info[ACCEPT_PROB] / info[NUM_STEPS]
    info[ENERGY] = ws.sample[1]
    info[ENERGY_ERROR] = ws.sample[1] - h0
    info[TREE_DEPTH] = depth
    x[:] = ws.x_sample
    grad[:] = ws.g_sample
    log_prob[0] = ws.sample[0]
