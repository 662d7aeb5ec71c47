"""HMC in Numba: the same algorithm as ``csrc/core/hmc.hpp``, statement for statement.

Same leapfrog (half kicks at the ends), same random-number order per transition (path length,
momentum, accept uniform), same dual averaging, so that for one seed the Numba and C++ chains agree
draw by draw (up to libm rounding). ``fastmath`` stays off: energies are compared.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithm 5, arXiv:1111.4246.
"""

import math

import numba
import numpy as np

from pyvi._numba.rng import normals, seed_state, uniform
from pyvi._numba.targets import BANANA, dim_of, log_prob_and_grad

__all__ = ["leapfrog", "sample_chains"]

_GAMMA = 0.05
_KAPPA = 0.75
_T0 = 10.0
_MAX_LOG_STEP = 700.0


@numba.njit(cache=True)
def _leapfrog_banana(params, x, p, grad, step_size, num_steps):
    """leapfrog() for the 2-D banana with the state in registers (Numba cannot unroll a loop over a
    run-time dimension the way the C++ template does); the same operations in the same order."""
    half = 0.5 * step_size
    num_data, mean_y, lik_precision, prior_precision, log_norm = params[0], params[1], params[2], params[3], params[4]
    x0, x1, g0, g1 = x[0], x[1], grad[0], grad[1]
    p0 = p[0] + half * g0
    p1 = p[1] + half * g1
    log_prob = 0.0
    for step in range(num_steps):
        x0 += step_size * p0
        x1 += step_size * p1
        residual = x0 + x1 * x1 - mean_y
        dlik_dr = -num_data * lik_precision * residual
        g0 = dlik_dr - prior_precision * x0
        g1 = 2.0 * x1 * dlik_dr - prior_precision * x1
        log_prob = log_norm + 0.5 * dlik_dr * residual - 0.5 * prior_precision * (x0 * x0 + x1 * x1)
        kick = step_size if step + 1 < num_steps else half
        p0 += kick * g0
        p1 += kick * g1
    x[0], x[1], p[0], p[1], grad[0], grad[1] = x0, x1, p0, p1, g0, g1
    return log_prob


@numba.njit(cache=True)
def leapfrog(kind, params, x, p, grad, step_size, num_steps):
    """num_steps leapfrog steps in place; ``grad`` holds the gradient at x on entry and exit."""
    if kind == BANANA:
        return _leapfrog_banana(params, x, p, grad, step_size, num_steps)
    d = x.shape[0]
    half = 0.5 * step_size
    log_prob = 0.0
    for i in range(d):
        p[i] += half * grad[i]
    for step in range(num_steps):
        for i in range(d):
            x[i] += step_size * p[i]
        log_prob = log_prob_and_grad(kind, params, x, grad)
        kick = step_size if step + 1 < num_steps else half
        for i in range(d):
            p[i] += kick * grad[i]
    return log_prob


@numba.njit(cache=True)
def _half_sum_squares(p):
    s = 0.0
    for i in range(p.shape[0]):
        s += p[i] * p[i]
    return 0.5 * s


@numba.njit(cache=True)
def _leapfrog_banana_group(params, x, p, grad, step_size, path_length, log_prob):
    """The leapfrog integrations of several banana chains (rows of x, p, grad), interleaved step
    by step as in csrc/core/hmc.hpp's leapfrog_group: independent chains hide each other's
    floating-point latency. Per chain, the same operations in the same order as leapfrog()."""
    lanes = x.shape[0]
    num_data, mean_y, lik_precision, prior_precision, log_norm = params[0], params[1], params[2], params[3], params[4]
    longest = 0
    for w in range(lanes):
        half = 0.5 * step_size[w]
        p[w, 0] += half * grad[w, 0]
        p[w, 1] += half * grad[w, 1]
        longest = max(longest, path_length[w])
    for step in range(longest):
        for w in range(lanes):
            if step >= path_length[w]:
                continue
            eps = step_size[w]
            x0 = x[w, 0] + eps * p[w, 0]
            x1 = x[w, 1] + eps * p[w, 1]
            residual = x0 + x1 * x1 - mean_y
            dlik_dr = -num_data * lik_precision * residual
            g0 = dlik_dr - prior_precision * x0
            g1 = 2.0 * x1 * dlik_dr - prior_precision * x1
            log_prob[w] = log_norm + 0.5 * dlik_dr * residual - 0.5 * prior_precision * (x0 * x0 + x1 * x1)
            kick = eps if step + 1 < path_length[w] else 0.5 * eps
            x[w, 0] = x0
            x[w, 1] = x1
            grad[w, 0] = g0
            grad[w, 1] = g1
            p[w, 0] += kick * g0
            p[w, 1] += kick * g1


@numba.njit(cache=True)
def _chain_group(kind, params, initial, num_samples, num_warmup, step_size0, max_steps, random_steps,
                 adapt, target_accept, max_energy_error, seed, first_chain,
                 samples, log_probs, accept_probs, divergent, steps_used, final_step):
    """Chains first_chain .. first_chain + lanes - 1 (one per row of ``initial``), transition by
    transition: begin (path length, momentum), integrate all lanes, finish (accept, adapt, record).
    Each chain's arithmetic and random stream are its own, so grouping never changes a draw."""
    lanes, d = initial.shape
    x = initial.copy()
    grad = np.empty((lanes, d))
    x_new = np.empty((lanes, d))
    grad_new = np.empty((lanes, d))
    p = np.empty((lanes, d))
    log_prob = np.empty(lanes)
    log_prob_new = np.empty(lanes)
    energy = np.empty(lanes)
    path_length = np.empty(lanes, dtype=np.int64)
    rngs = np.empty((lanes, 4), dtype=np.uint64)
    # Dual averaging state per lane (csrc/core/dual_averaging.hpp).
    step_size = np.full(lanes, step_size0)
    mu = math.log(10.0 * step_size0)
    log_step = np.full(lanes, math.log(step_size0))
    log_step_bar = np.zeros(lanes)
    h_bar = np.zeros(lanes)
    count = 0.0
    for w in range(lanes):
        log_prob[w] = log_prob_and_grad(kind, params, x[w], grad[w])
        rngs[w] = seed_state(seed, np.uint64(first_chain + w))
    for it in range(num_warmup + num_samples):
        for w in range(lanes):
            rng = rngs[w]
            if random_steps:
                path_length[w] = 1 + np.int64(uniform(rng) * np.float64(max_steps))
            else:
                path_length[w] = max_steps
            normals(rng, p[w])
            energy[w] = -log_prob[w] + _half_sum_squares(p[w])
            x_new[w] = x[w]
            grad_new[w] = grad[w]
        if kind == BANANA and lanes > 1:
            _leapfrog_banana_group(params, x_new, p, grad_new, step_size, path_length, log_prob_new)
        else:
            for w in range(lanes):
                log_prob_new[w] = leapfrog(kind, params, x_new[w], p[w], grad_new[w], step_size[w], path_length[w])
        if it < num_warmup and adapt:
            count += 1.0
        for w in range(lanes):
            energy_error = (-log_prob_new[w] + _half_sum_squares(p[w])) - energy[w]
            if energy_error != energy_error:
                energy_error = np.inf
            accept_prob = 1.0 if energy_error <= 0.0 else math.exp(-energy_error)
            u = uniform(rngs[w])
            if u < accept_prob:
                x[w] = x_new[w]
                grad[w] = grad_new[w]
                log_prob[w] = log_prob_new[w]
            if it < num_warmup:
                if adapt:
                    eta = 1.0 / (count + _T0)
                    h_bar[w] = (1.0 - eta) * h_bar[w] + eta * (target_accept - accept_prob)
                    log_step[w] = min(max(mu - math.sqrt(count) / _GAMMA * h_bar[w], -_MAX_LOG_STEP), _MAX_LOG_STEP)
                    weight = count ** (-_KAPPA)
                    log_step_bar[w] = weight * log_step[w] + (1.0 - weight) * log_step_bar[w]
                    step_size[w] = math.exp(log_step[w])
                    if it + 1 == num_warmup:
                        step_size[w] = math.exp(log_step_bar[w])
                continue
            draw = it - num_warmup
            samples[w, draw, :] = x[w]
            log_probs[w, draw] = log_prob[w]
            accept_probs[w, draw] = accept_prob
            divergent[w, draw] = energy_error > max_energy_error
            steps_used[w, draw] = path_length[w]
    final_step[:] = step_size


#: Chains integrated together by one thread (see _leapfrog_banana_group); as kChainGroup in C++.
CHAIN_GROUP = 8


@numba.njit(cache=True, parallel=True)
def sample_chains(kind, params, initial, num_samples, num_warmup, step_size, num_steps, random_steps,
                  adapt, target_accept, max_energy_error, seed):
    """All chains, in groups of CHAIN_GROUP spread over threads (prange); chain c uses random
    stream (seed, c) whatever its group or thread."""
    num_chains, d = initial.shape
    samples = np.empty((num_chains, num_samples, d))
    log_probs = np.empty((num_chains, num_samples))
    accept_probs = np.empty((num_chains, num_samples))
    divergent = np.empty((num_chains, num_samples), dtype=np.bool_)
    steps_used = np.empty((num_chains, num_samples), dtype=np.int32)
    final_step = np.empty(num_chains)
    num_groups = (num_chains + CHAIN_GROUP - 1) // CHAIN_GROUP
    for group in numba.prange(num_groups):
        lo = group * CHAIN_GROUP
        hi = min(lo + CHAIN_GROUP, num_chains)
        _chain_group(kind, params, initial[lo:hi], num_samples, num_warmup, step_size, num_steps, random_steps,
                     adapt, target_accept, max_energy_error, seed, lo,
                     samples[lo:hi], log_probs[lo:hi], accept_probs[lo:hi], divergent[lo:hi], steps_used[lo:hi],
                     final_step[lo:hi])
    return samples, log_probs, accept_probs, divergent, steps_used, final_step
