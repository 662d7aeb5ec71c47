"""The banana posterior's Numba face: the log joint from the sufficient statistics, O(1) per point.

The same arithmetic, in the same order, as ``banana_log_joint`` in csrc/common/banana.h; the
parameters are ``banana_params``' (C++) values, read through ``pyvi._core.banana_params``, so the
two backends agree to the bit.
"""

from typing import NamedTuple

import numba

from pyvi._numba.targets.registry import register

__all__ = ["BananaFace", "banana_log_joint"]


class BananaFace(NamedTuple):
    """``BananaParams`` of csrc/common/banana.h, field for field."""

    num_data: float  # n
    mean_y: float  # ybar
    lik_precision: float  # 1 / sigma_y^2
    prior_precision: float  # 1 / sigma_theta^2
    log_norm: float  # -n/2 log(2 pi sigma_y^2) - ss/(2 sigma_y^2) - log(2 pi sigma_theta^2)


@register(BananaFace, dim=2)
@numba.njit(cache=True, inline="always")
def banana_log_joint(target, x, grad):
    t1 = x[0]
    t2 = x[1]
    residual = t1 + t2 * t2 - target.mean_y  # r - ybar
    dlik_dr = -target.num_data * target.lik_precision * residual
    grad[0] = dlik_dr - target.prior_precision * t1
    grad[1] = 2.0 * t2 * dlik_dr - target.prior_precision * t2
    return target.log_norm + 0.5 * dlik_dr * residual - 0.5 * target.prior_precision * (t1 * t1 + t2 * t2)
