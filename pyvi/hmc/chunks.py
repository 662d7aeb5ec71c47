"""Runs a sampler in chunks of iterations, with control back in Python between chunks.

The samplers keep every chain's state between calls (``advance(begin, end)`` runs iterations
[begin, end) of every chain: ``pyvi._core.HmcRun``, ``pyvi._numba.hmc.advance``, the numpy
reference), so a run's draws do not depend on how it is cut into chunks (tested bit for bit).
Between two chunks, Python:

- reports progress to a callback ``progress(done, total)`` (iterations of every chain, warm-up
  included), which a progress bar can draw from; an exception it raises stops the run;
- sees a pending Ctrl-C: the native code runs without the GIL and never checks for signals, and
  the KeyboardInterrupt is raised as soon as the chunk returns.

Chunks grow towards :data:`CHUNK_SECONDS` of work each: the cost of a chunk (a call into compiled
code, a parallel region: tens of microseconds, a millisecond on a busy machine) stays below 1% of
a run, and Ctrl-C waits at most about that long. The first chunk is sized from an estimate of the
work per iteration, so that a short run is one chunk, as it was before chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["run_in_chunks", "first_chunk", "CHUNK_SECONDS", "FIRST_CHUNK_WORK"]

#: Target duration of a chunk, in seconds.
CHUNK_SECONDS = 0.2
#: Work of the first chunk, in leapfrog steps x dimensions summed over chains (about 10 ms of
#: banana HMC on one core), before any chunk has been timed.
FIRST_CHUNK_WORK = 2**22
#: How much a chunk may grow over the last one (its timing may be noise).
_MAX_GROWTH = 16


def first_chunk(num_chains: int, num_steps: int, dim: int) -> int:
    """Iterations of the first chunk: about FIRST_CHUNK_WORK leapfrog steps x dimensions."""
    return max(1, FIRST_CHUNK_WORK // max(1, num_chains * num_steps * dim))


def run_in_chunks(advance: Callable[[int, int], object], num_iterations: int, first: int,
                  progress: Callable[[int, int], object] | None = None, *,
                  chunk_seconds: float = CHUNK_SECONDS, sizes: Iterable[int] | None = None) -> None:
    """Calls ``advance(begin, end)`` on consecutive ranges that cover ``[0, num_iterations)``.

    Args:
        advance: runs iterations [begin, end) of every chain.
        num_iterations: the run's iterations (warm-up + sampling).
        first: the first chunk's iterations (see :func:`first_chunk`).
        progress: called as ``progress(end, num_iterations)`` after each chunk, or None.
        chunk_seconds: the duration the chunks grow towards.
        sizes: fixed chunk sizes instead (tests: any cut gives the same draws); the last one
            repeats until the run is done.
    """
    sizes = iter(sizes) if sizes is not None else None
    size = max(1, first)
    done = 0
    while done < num_iterations:
        if sizes is not None:
            size = max(1, next(sizes, size))
        end = min(num_iterations, done + size)
        started = time.perf_counter()
        advance(done, end)
        elapsed = time.perf_counter() - started
        if sizes is None:
            # Scale the chunk to chunk_seconds from the last one's speed (growth capped: a chunk
            # too short to time says little).
            scale = chunk_seconds / elapsed if elapsed > 0 else _MAX_GROWTH
            size = max(1, int((end - done) * min(scale, _MAX_GROWTH)))
        done = end
        if progress is not None:
            progress(done, num_iterations)
