"""Neal's funnel's Numba face: the same arithmetic, in the same order, as ``FunnelTarget`` in
csrc/core/targets/funnel.hpp (bit-equal draws), with the same ``log_norm``."""

import math
from typing import NamedTuple

import numba

from pyvi._numba.targets.registry import register

__all__ = ["FunnelFace", "funnel_log_prob"]


class FunnelFace(NamedTuple):
    log_norm: float
    v_scale: float
    centred: bool


@register(FunnelFace, dim=None)
@numba.njit(cache=True, inline="always")
def funnel_log_prob(target, x, grad):
    d = x.shape[0]
    if not target.centred:
        total = 0.0
        for i in range(d):
            total += x[i] * x[i]
            grad[i] = -x[i]
        return target.log_norm - 0.5 * total
    v = x[0]
    inv_var = 1.0 / (target.v_scale * target.v_scale)
    precision = math.exp(-v)
    n = float(d - 1)
    total = 0.0
    for i in range(1, d):
        total += x[i] * x[i]
        grad[i] = -x[i] * precision
    grad[0] = -v * inv_var - 0.5 * n + 0.5 * precision * total
    return target.log_norm - 0.5 * v * v * inv_var - 0.5 * n * v - 0.5 * precision * total
