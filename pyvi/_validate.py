"""Argument checks for the public API: each failure is a ValueError or TypeError naming the argument."""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["as_float_array", "positive_float", "count", "seed_value", "probability", "choice"]


def as_float_array(value, name: str, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 numpy array, checked for dimension and finiteness. Complex input is a
    TypeError (numpy's cast would keep the real part, with only a ComplexWarning)."""
    if hasattr(value, "detach"):  # a torch tensor: refuse to guess about devices and grads
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
        complex_values = array.dtype.kind == "c"
        if not complex_values:
            array = array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}") from error
    if complex_values:
        raise TypeError(f"{name} must hold real numbers, got complex values ({array.dtype}); pass {name}.real "
                        "if the imaginary part is meant to be dropped")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if array.ndim not in allowed:
            raise ValueError(f"{name} must be a {' or '.join(f'{k}-D' for k in allowed)} array, got shape {array.shape}")
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values")
    return array


def positive_float(value, name: str) -> float:
    """A finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def count(value, name: str, *, minimum: int = 0) -> int:
    """An integer >= minimum (bools refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def seed_value(value, name: str = "seed") -> int:
    """A seed in [0, 2**64)."""
    value = count(value, name)
    if value >= 2**64:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return value


def probability(value, name: str) -> float:
    """A float strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value}")
    return value


def choice(value, name: str, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value
