"""The hybrid Rosenbrock's Numba face: the same arithmetic, in the same order, as
``HybridRosenbrockTarget`` in csrc/core/targets/hybrid_rosenbrock.hpp (bit-equal draws)."""

from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.targets.registry import register

__all__ = ["HybridRosenbrockFace", "hybrid_rosenbrock_log_prob"]


class HybridRosenbrockFace(NamedTuple):
    log_norm: float
    mu: float
    a: float
    b: np.ndarray  # (n2, n1 - 1)


@register(HybridRosenbrockFace, dim=None)
@numba.njit(cache=True, inline="always")
def hybrid_rosenbrock_log_prob(target, x, grad):
    r0 = x[0] - target.mu
    grad[0] = -2.0 * target.a * r0
    lp = -target.a * r0 * r0
    num_blocks, per_block = target.b.shape
    for j in range(num_blocks):
        prev_index = 0
        for i in range(per_block):
            index = 1 + j * per_block + i
            prev = x[prev_index]
            r = x[index] - prev * prev
            bb = target.b[j, i]
            lp -= bb * r * r
            grad[index] = -2.0 * bb * r
            grad[prev_index] += 4.0 * bb * r * prev
            prev_index = index
    return target.log_norm + lp
