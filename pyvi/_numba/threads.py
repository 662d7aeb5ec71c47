"""The Numba thread count for one call: the one place that calls ``numba.set_num_threads``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba

__all__ = ["num_threads"]


@contextmanager
def num_threads(count: int | None) -> Iterator[int]:
    """Runs the block with ``count`` Numba threads (None or 0: all of Numba's pool; more than the
    pool: the pool), then restores the previous count, also when the block raises.

    Example:
        >>> import numba
        >>> before = numba.get_num_threads()
        >>> with num_threads(1) as used:
        ...     numba.get_num_threads() == used == 1
        True
        >>> numba.get_num_threads() == before
        True
    """
    limit = numba.config.NUMBA_NUM_THREADS
    used = min(count or limit, limit)
    previous = numba.get_num_threads()
    numba.set_num_threads(used)
    try:
        yield used
    finally:
        numba.set_num_threads(previous)
