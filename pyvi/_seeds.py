"""Derived seeds: one user seed feeding several generators, each at a fixed offset.

A run seeded with ``seed`` gives its i-th generator ``seed + i``; with seeds allowed up to
2**64 - 1 (the range torch's generators and pyvi's native streams take) that sum can leave the
range, so it wraps modulo 2**64. For every seed below 2**64 - i this is the plain sum: the streams
of ordinary seeds do not change.
"""

from __future__ import annotations

from pyvi._validate import seed_value

__all__ = ["derived_seed"]

_SEED_RANGE = 2**64


def derived_seed(seed: int, offset: int) -> int:
    """``(seed + offset) mod 2**64``, for a seed in [0, 2**64) and a non-negative offset.

    Example:
        >>> derived_seed(5, 2), derived_seed(2**64 - 1, 1)
        (7, 0)
    """
    return (seed_value(seed) + seed_value(offset, "offset")) % _SEED_RANGE
