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
def _chain(kind, params, initial, num_samples, num_warmup, step_size0, max_steps, random_steps,
           adapt, target_accept, max_energy_error, seed, chain,
           samples, log_probs, accept_probs, divergent, steps_used):
    d = dim_of(kind, params)
    x = initial.copy()
    grad = np.empty(d)
    x_new = np.empty(d)
    grad_new = np.empty(d)
    p = np.empty(d)
    log_prob = log_prob_and_grad(kind, params, x, grad)
    rng = seed_state(seed, np.uint64(chain))
    # Dual averaging state (csrc/core/dual_averaging.hpp).
    mu = math.log(10.0 * step_size0)
    log_step = math.log(step_size0)
    log_step_bar = 0.0
    h_bar = 0.0
    count = 0.0
    step_size = step_size0
    for it in range(num_warmup + num_samples):
        if random_steps:
            path_length = 1 + np.int64(uniform(rng) * np.float64(max_steps))
        else:
            path_length = max_steps
        normals(rng, p)
        energy = -log_prob + _half_sum_squares(p)
        x_new[:] = x
        grad_new[:] = grad
        log_prob_new = leapfrog(kind, params, x_new, p, grad_new, step_size, path_length)
        energy_error = (-log_prob_new + _half_sum_squares(p)) - energy
        if energy_error != energy_error:
            energy_error = np.inf
        accept_prob = 1.0 if energy_error <= 0.0 else math.exp(-energy_error)
        u = uniform(rng)
        if u < accept_prob:
            x, x_new = x_new, x
            grad, grad_new = grad_new, grad
            log_prob = log_prob_new
        if it < num_warmup:
            if adapt:
                count += 1.0
                eta = 1.0 / (count + _T0)
                h_bar = (1.0 - eta) * h_bar + eta * (target_accept - accept_prob)
                log_step = min(max(mu - math.sqrt(count) / _GAMMA * h_bar, -_MAX_LOG_STEP), _MAX_LOG_STEP)
                weight = count ** (-_KAPPA)
                log_step_bar = weight * log_step + (1.0 - weight) * log_step_bar
                step_size = math.exp(log_step)
                if it + 1 == num_warmup:
                    step_size = math.exp(log_step_bar)
            continue
        draw = it - num_warmup
        samples[draw, :] = x
        log_probs[draw] = log_prob
        accept_probs[draw] = accept_prob
        divergent[draw] = energy_error > max_energy_error
        steps_used[draw] = path_length
    return step_size


@numba.njit(cache=True, parallel=True)
def sample_chains(kind, params, initial, num_samples, num_warmup, step_size, num_steps, random_steps,
                  adapt, target_accept, max_energy_error, seed):
    """All chains in parallel (prange); chain c uses random stream (seed, c)."""
    num_chains, d = initial.shape
    samples = np.empty((num_chains, num_samples, d))
    log_probs = np.empty((num_chains, num_samples))
    accept_probs = np.empty((num_chains, num_samples))
    divergent = np.empty((num_chains, num_samples), dtype=np.bool_)
    steps_used = np.empty((num_chains, num_samples), dtype=np.int32)
    final_step = np.empty(num_chains)
    for c in numba.prange(num_chains):
        final_step[c] = _chain(kind, params, initial[c], num_samples, num_warmup, step_size, num_steps,
                               random_steps, adapt, target_accept, max_energy_error, seed, c,
                               samples[c], log_probs[c], accept_probs[c], divergent[c], steps_used[c])
    return samples, log_probs, accept_probs, divergent, steps_used, final_step
