"""The Gaussian mixture's Numba face: the same arithmetic, in the same order, as
``GaussianMixtureTarget`` in csrc/core/targets/gaussian_mixture.hpp (bit-equal draws)."""

import math
from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.targets.registry import register

__all__ = ["GaussianMixtureFace", "gaussian_mixture_log_prob"]


class GaussianMixtureFace(NamedTuple):
    log_coef: np.ndarray  # (K,) log w_k - d/2 log(2 pi) + 1/2 log det(precision_k)
    means: np.ndarray  # (K, d)
    precisions: np.ndarray  # (K, d, d)


@numba.njit(cache=True, inline="always")
def _component(target, k, x, grad, scale, with_grad):
    """log coefficient - 1/2 quad of component k; with_grad: grad -= scale * precision_k (x - mean_k)."""
    d = x.shape[0]
    quad = 0.0
    for i in range(d):
        row = 0.0
        for j in range(d):
            row += target.precisions[k, i, j] * (x[j] - target.means[k, j])
        if with_grad:
            grad[i] -= scale * row
        quad += (x[i] - target.means[k, i]) * row
    return target.log_coef[k] - 0.5 * quad


@register(GaussianMixtureFace, dim=None)
@numba.njit(cache=True, inline="always")
def gaussian_mixture_log_prob(target, x, grad):
    num_components = target.log_coef.shape[0]
    terms = np.empty(num_components)
    top = -np.inf
    for k in range(num_components):
        terms[k] = _component(target, k, x, grad, 0.0, False)
        if terms[k] > top:
            top = terms[k]
    for i in range(x.shape[0]):
        grad[i] = 0.0
    total = 0.0
    for k in range(num_components):
        weight = math.exp(terms[k] - top)
        total += weight
        _component(target, k, x, grad, weight, True)
    for i in range(x.shape[0]):
        grad[i] /= total
    return top + math.log(total)
