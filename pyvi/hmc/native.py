"""The native HMC backends: ``pyvi._core`` (C++) and ``pyvi._numba.hmc``, on a target's face.

Both run the same algorithm on the same random streams (chain c: xoshiro256++ stream (seed, c);
a distributed run's share starting at chain ``first_chain`` passes it on)
and fill the same outputs (``pyvi._core.hmc_draws``), so their draws are identical, bit for bit,
whatever the thread count, the grouping of chains or the chunks a run is cut into
(:mod:`pyvi.hmc.chunks`: between chunks Python reports progress and sees Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from pyvi._backend import require
from pyvi.hmc.chunks import first_chunk, run_in_chunks
from pyvi.hmc.settings import Settings, constants

__all__ = ["run_cpp", "run_numba", "numba_leapfrog"]


def _first(initial: np.ndarray, settings: Settings) -> int:
    return first_chunk(initial.shape[0], settings.num_steps, initial.shape[1])


def run_cpp(face, initial: np.ndarray, settings: Settings, num_threads: int,
            progress: Callable[[int, int], object] | None = None,
            chunks: Iterable[int] | None = None, first_chain: int = 0) -> dict[str, np.ndarray]:
    """Every chain on the C++ core, chunk by chunk (GIL released); ``num_threads`` 0 uses all
    cores. ``chunks``: fixed chunk sizes (tests). Row c of ``initial`` is chain ``first_chain + c``
    of the run (stream (seed, first_chain + c))."""
    s = settings
    run = require("cpp").hmc_start(face, initial, s.num_samples, s.num_warmup, s.step_size, s.num_steps,
                                   s.random_steps, s.adapt_step_size, s.target_accept,
                                   constants()["max_energy_error"], s.seed, first_chain)
    run_in_chunks(lambda begin, end: run.advance(end - begin, num_threads), run.num_iterations,
                  _first(initial, settings), progress, sizes=chunks)
    return run.outputs


def run_numba(face, initial: np.ndarray, settings: Settings, num_threads: int,
              progress: Callable[[int, int], object] | None = None,
              chunks: Iterable[int] | None = None, first_chain: int = 0) -> dict[str, np.ndarray]:
    """Every chain on the Numba sampler, chunk by chunk, in a prange over ``num_threads`` threads
    (0: all). ``chunks``: fixed chunk sizes (tests). Row c of ``initial`` is chain
    ``first_chain + c`` of the run."""
    require("numba")
    from pyvi._numba.hmc import Draws, Settings as NumbaSettings, advance, start
    from pyvi._numba.threads import num_threads as numba_threads

    # The record's fields are the settings' and pyvi._core's constants', by name.
    record = NumbaSettings(**{**settings.as_dict(), "seed": np.uint64(settings.seed)}, first_chain=first_chain,
                           **constants())
    chains = start(face, record, initial)
    bad = np.flatnonzero(~np.isfinite(chains.log_prob))
    if bad.size:
        raise ValueError(f"initial: the log density is not finite at chain {first_chain + bad[0]}'s start")
    num_chains, dim = initial.shape
    draws = Draws(**require("cpp").hmc_draws(num_chains, settings.num_samples, dim))
    with numba_threads(num_threads):
        run_in_chunks(lambda begin, end: advance(face, record, chains, draws, begin, end),
                      settings.num_warmup + settings.num_samples, _first(initial, settings), progress, sizes=chunks)
    return draws._asdict()


def numba_leapfrog(face, position: np.ndarray, momentum: np.ndarray, step_size: float, num_steps: int):
    """The Numba sampler's leapfrog on one lane: ``(position, momentum, log_prob)`` at the end."""
    require("numba")
    from pyvi._numba.hmc import integrate

    x, p = position.copy(), momentum.copy()
    log_prob = integrate(face, x, p, step_size, num_steps)
    return x, p, float(log_prob)
