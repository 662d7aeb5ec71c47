"""A target from Python callables, for the numpy HMC backend (no native face).

No finite differences: ``grad_fn`` is required. Central differences would cost 2 x dim extra
evaluations of the density per leapfrog step (62 for a 31-dimensional model) and carry an error of
about sqrt(machine epsilon) relative to the density's scale; HMC stays exact with them (a
Metropolis step corrects any leapfrog force), but mixes worse and runs dim times slower. A model
without a hand-written gradient is better written for :class:`pyvi.targets.NumbaTarget` (native
speed on every backend) or in torch, where autograd supplies the gradient.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from pyvi._validate import count
from pyvi.targets.base import Target
from pyvi.targets.numba_target import check_point_of

__all__ = ["LogDensity"]


class LogDensity(Target):
    """A log density given by Python functions of a ``(dim,)`` float64 array.

    Args:
        logdensity_fn: ``x -> log p(x)`` (up to a constant), a number.
        grad_fn: ``x -> d log p / dx`` as a ``(dim,)`` array. Required: pyvi does not difference
            numerically (see the module doc); without a gradient, use
            :class:`pyvi.targets.NumbaTarget` with one written by hand, or a torch model.
        dim: the dimension of ``x``.
        check_point: where both functions are called once, at construction, to check what they
            return (zeros by default; pass a point where the density is defined if zero is not).

    Raises:
        TypeError: a function that is not callable or that returns the wrong type; no ``grad_fn``.
        ValueError: ``grad_fn`` returns the wrong shape; a bad ``dim`` or ``check_point``.
        Exception: whatever a function raised at ``check_point``, with a note saying so.

    An exception raised while sampling reaches the caller with a note naming the chain and the
    transition where it happened; a non-finite value or gradient is a rejected, divergent
    transition.

    Example:
        >>> target = LogDensity(lambda x: -0.5 * x @ x, lambda x: -x, dim=2)
        >>> target.log_prob_and_grad(np.ones(2))
        (-1.0, array([-1., -1.]))
    """

    def __init__(self, logdensity_fn: Callable[[np.ndarray], float],
                 grad_fn: Callable[[np.ndarray], np.ndarray] | None = None, dim: int | None = None, *,
                 check_point=None):
        if not callable(logdensity_fn):
            raise TypeError("logdensity_fn must be callable")
        if grad_fn is None:
            raise TypeError("grad_fn is required: pyvi does not difference numerically (2 x dim extra evaluations "
                            "per leapfrog step); write the gradient by hand, or use pyvi.targets.NumbaTarget (native "
                            "speed on every backend) or a torch model (autograd)")
        if not callable(grad_fn):
            raise TypeError("grad_fn must be callable")
        if dim is None:
            raise TypeError("dim is required: LogDensity(logdensity_fn, grad_fn, dim)")
        self.dim = count(dim, "dim", minimum=1)
        self.logdensity_fn = logdensity_fn
        self.grad_fn = grad_fn
        point = check_point_of(check_point, self.dim)
        try:
            value, grad = self.logdensity_fn(point.copy()), self.grad_fn(point.copy())
        except Exception as error:
            error.add_note(f"(raised at check_point = {point.tolist()}, where LogDensity calls both functions once to "
                           "check them; pass check_point= a point where they are defined)")
            raise
        self._checked(value, grad)

    def log_prob_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(x) and its gradient at one point ``x`` of shape ``(dim,)``.

        Raises:
            TypeError: ``logdensity_fn`` did not return one real number (a 1-element array is not
                one: it usually means a batch dimension crept in), or ``grad_fn`` returned complex
                values or no array of numbers.
            ValueError: ``grad_fn`` returned another shape than ``(dim,)``.
        """
        return self._checked(self.logdensity_fn(x), self.grad_fn(x))

    def _checked(self, value, grad) -> tuple[float, np.ndarray]:
        """What the two functions returned, checked (see :meth:`log_prob_and_grad`)."""
        try:
            grad = np.asarray(grad)
        except (TypeError, ValueError) as error:  # a ragged list, say
            raise TypeError(f"grad_fn must return an array of real numbers, got {type(grad).__name__}") from error
        if grad.dtype.kind not in "fiub":
            raise TypeError(f"grad_fn must return real numbers, got dtype {grad.dtype}")
        if grad.shape != (self.dim,):
            raise ValueError(f"grad_fn must return shape ({self.dim},), got {grad.shape}")
        return _real_number(value, "logdensity_fn"), grad.astype(np.float64, copy=False)


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
