"""A target from Python callables, for the numpy HMC backend (no native face)."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from pyvi._validate import count
from pyvi.targets.base import Target

__all__ = ["LogDensity"]


class LogDensity(Target):
    """A log density given by Python functions of a ``(dim,)`` float64 array.

    Args:
        logdensity_fn: ``x -> log p(x)`` (up to a constant).
        grad_fn: ``x -> d log p / dx`` as a ``(dim,)`` array.
        dim: the dimension of ``x``.

    Example:
        >>> target = LogDensity(lambda x: -0.5 * x @ x, lambda x: -x, dim=2)
        >>> target.log_prob_and_grad(np.ones(2))
        (-1.0, array([-1., -1.]))
    """

    def __init__(self, logdensity_fn: Callable[[np.ndarray], float], grad_fn: Callable[[np.ndarray], np.ndarray], dim: int):
        if not callable(logdensity_fn):
            raise TypeError("logdensity_fn must be callable")
        if not callable(grad_fn):
            raise TypeError("grad_fn must be callable")
        self.dim = count(dim, "dim", minimum=1)
        self.logdensity_fn = logdensity_fn
        self.grad_fn = grad_fn

    def log_prob_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(x) and its gradient at one point ``x`` of shape ``(dim,)``.

        Raises:
            TypeError: ``logdensity_fn`` did not return one real number (a 1-element array is not
                one: it usually means a batch dimension crept in), or ``grad_fn`` returned complex
                values.
            ValueError: ``grad_fn`` returned another shape than ``(dim,)``.
        """
        grad = np.asarray(self.grad_fn(x))
        if grad.dtype.kind not in "fiub":
            raise TypeError(f"grad_fn must return real numbers, got dtype {grad.dtype}")
        if grad.shape != (self.dim,):
            raise ValueError(f"grad_fn must return shape ({self.dim},), got {grad.shape}")
        return _real_number(self.logdensity_fn(x), "logdensity_fn"), grad.astype(np.float64, copy=False)


def _real_number(value, name: str) -> float:
    """``value`` as a float if it is one real number (a float, an int, a 0-d real array), else a
    TypeError naming the function that returned it."""
    if isinstance(value, float):  # the common case (numpy's float64 too), first: this runs at every step
        return float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "fiu":
        return float(value)
    shape = getattr(value, "shape", None)
    got = f"an array of shape {shape}" if shape is not None else type(value).__name__
    if np.iscomplexobj(value):
        got = f"complex {got}"
    raise TypeError(f"{name} must return one real number (a float or a 0-d array), got {got}"
                    + ("; index the result or reduce over the batch dimension" if shape and np.size(value) == 1 else ""))
