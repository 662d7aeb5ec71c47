"""The banana posterior written as a user writes a :class:`~pyvi.targets.NumbaTarget`: the worked
example of bringing one's own log density to pyvi's compiled samplers.

A user's target is an ``@numba.njit`` function ``fn(x, grad, *data) -> float``: it returns
log p(x) (up to a constant), writes d log p / dx into ``grad`` in place, and takes the model's
numbers and arrays as ``data``, so one compiled function serves many data sets. Here ``fn`` is
:func:`banana_log_joint` and ``data`` is the banana's ``(num_data, mean_y, lik_precision,
prior_precision, log_norm)``; the model is

    y_i ~ N(theta1 + theta2^2, sigma_y^2),  theta ~ N(0, sigma^2 I),

whose likelihood depends on the data only through their mean (:mod:`pyvi.targets.banana`).
The function does the arithmetic of pyvi's own banana (csrc/common/banana.h) in the same order and
without ``fastmath``, so :func:`user_banana_target` gives the built-in :class:`~pyvi.targets.Banana`'s
draws bit for bit on the cpp and numba backends (tests/test_user_targets.py checks it;
bench/bench_user_targets.py times the two). It is ``cache=True``: numba keeps the samplers compiled
for it on disk, and one compilation per process serves every caller.

Example:
    >>> import numpy as np
    >>> from pyvi.targets import Banana
    >>> banana = Banana.default()
    >>> target = user_banana_target(banana)
    >>> x = np.array([0.5, 0.8])
    >>> log_prob, grad = target.log_prob_and_grad(x)
    >>> built_in_log_prob, built_in_grad = banana.log_prob_and_grad(x, backend="cpp")
    >>> bool(log_prob == built_in_log_prob and np.array_equal(grad, built_in_grad))
    True

References:
    Problem Set 4, Problem 3 (``shared/seed/problem-set.md``), the model of :class:`~pyvi.targets.Banana`.
"""

from __future__ import annotations

import numba

from pyvi.targets.banana import Banana
from pyvi.targets.numba_target import NumbaTarget

__all__ = ["banana_log_joint", "user_banana_target"]


@numba.njit(cache=True)
def banana_log_joint(x, grad, num_data, mean_y, lik_precision, prior_precision, log_norm):
    """log p(y, theta) of the banana at ``x = theta``; writes d/dtheta into ``grad``.

    With r = theta1 + theta2^2 - mean(y) the residual of the mean, the log likelihood is
    -n lik_precision r^2 / 2 (plus a constant in ``log_norm``), so its derivative in r,
    ``dlik_dr``, serves both the value and the gradient (chain rule through theta2^2).
    """
    t1 = x[0]
    t2 = x[1]
    residual = t1 + t2 * t2 - mean_y
    dlik_dr = -num_data * lik_precision * residual
    grad[0] = dlik_dr - prior_precision * t1
    grad[1] = 2.0 * t2 * dlik_dr - prior_precision * t2
    return log_norm + 0.5 * dlik_dr * residual - 0.5 * prior_precision * (t1 * t1 + t2 * t2)


def user_banana_target(banana: Banana) -> NumbaTarget:
    """``banana`` as a user's target: ``NumbaTarget(banana_log_joint, 2, data=...)`` with the
    banana's parameters (``banana_params`` of csrc/common/banana.h, the same bits as the built-in)."""
    if not isinstance(banana, Banana):
        raise TypeError(f"banana must be a pyvi.targets.Banana, got {type(banana).__name__}")
    return NumbaTarget(banana_log_joint, 2, data=tuple(banana.numba_target()))
