"""Log densities for the Numba samplers, selected by an integer kind and a flat parameter array.

Numba compiles one sampler for all targets this way (a first-class function argument would
compile a copy per target and defeat the on-disk cache).

Layouts of ``params`` (float64):
    BANANA:   [n, ybar, 1/sigma_y^2, 1/sigma_theta^2, log_norm]     (see csrc/common/banana.h)
    GAUSSIAN: [d, log_norm, mean (d), precision (d*d, row-major)]
"""

import numba
import numpy as np

__all__ = ["BANANA", "GAUSSIAN", "dim_of", "log_prob_and_grad", "log_prob_and_grad_batch"]

BANANA = 0
GAUSSIAN = 1


@numba.njit(cache=True)
def dim_of(kind, params):
    if kind == BANANA:
        return 2
    return int(params[0])


@numba.njit(cache=True)
def _banana(params, x, grad):
    num_data, mean_y, lik_precision, prior_precision, log_norm = params[0], params[1], params[2], params[3], params[4]
    t1 = x[0]
    t2 = x[1]
    residual = t1 + t2 * t2 - mean_y
    dlik_dr = -num_data * lik_precision * residual
    grad[0] = dlik_dr - prior_precision * t1
    grad[1] = 2.0 * t2 * dlik_dr - prior_precision * t2
    return log_norm + 0.5 * dlik_dr * residual - 0.5 * prior_precision * (t1 * t1 + t2 * t2)


@numba.njit(cache=True)
def _gaussian(params, x, grad):
    d = int(params[0])
    log_norm = params[1]
    mean = params[2 : 2 + d]
    quad = 0.0
    for i in range(d):
        row = 0.0
        for j in range(d):
            row += params[2 + d + i * d + j] * (x[j] - mean[j])
        grad[i] = -row
        quad += (x[i] - mean[i]) * row
    return log_norm - 0.5 * quad


@numba.njit(cache=True)
def log_prob_and_grad(kind, params, x, grad):
    """log p(x); writes the gradient into ``grad``."""
    if kind == BANANA:
        return _banana(params, x, grad)
    return _gaussian(params, x, grad)


@numba.njit(cache=True, parallel=True)
def log_prob_and_grad_batch(kind, params, points):
    """Batched version over the rows of ``points`` (n, d): returns (log_prob (n,), grad (n, d))."""
    n, d = points.shape
    log_prob = np.empty(n)
    grad = np.empty((n, d))
    for i in numba.prange(n):
        log_prob[i] = log_prob_and_grad(kind, params, points[i], grad[i])
    return log_prob, grad
