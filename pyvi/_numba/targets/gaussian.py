"""The multivariate normal's Numba face: log N(x; mean, precision^-1) and its gradient, O(d^2).

The same arithmetic, in the same order, as ``GaussianTarget`` in csrc/core/targets/gaussian.hpp,
with the same ``log_norm`` (computed once, by :class:`pyvi.targets.Gaussian`).
"""

from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.targets.registry import register

__all__ = ["GaussianFace", "gaussian_log_prob"]


class GaussianFace(NamedTuple):
    log_norm: float  # -d/2 log(2 pi) + 1/2 log det(precision)
    mean: np.ndarray  # (d,)
    precision: np.ndarray  # (d, d), symmetric positive definite


@register(GaussianFace, dim=None)
@numba.njit(cache=True, inline="always")
def gaussian_log_prob(target, x, grad):
    d = x.shape[0]
    mean = target.mean
    precision = target.precision
    quad = 0.0
    for i in range(d):
        row = 0.0
        for j in range(d):
            row += precision[i, j] * (x[j] - mean[j])
        grad[i] = -row
        quad += (x[i] - mean[i]) * row
    return target.log_norm - 0.5 * quad
