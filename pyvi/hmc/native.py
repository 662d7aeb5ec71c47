"""The native HMC backends: ``pyvi._core`` (C++) and ``pyvi._numba.hmc``, on a target's face.

Both run the same algorithm on the same random streams (chain c: xoshiro256++ stream (seed, c);
a distributed run's share starting at chain ``first_chain`` passes it on)
and fill the same outputs (``pyvi._core.hmc_draws``), so their draws are identical, bit for bit,
whatever the thread count, the grouping of chains or the chunks a run is cut into
(:mod:`pyvi.hmc.chunks`: between chunks Python reports progress and sees Ctrl-C).

Exceptions from a user's compiled log density (:class:`pyvi.targets.NumbaTarget`) cannot cross a
numba prange or the C++ core; both backends catch them where they happen and stop at the end of
that chunk, and the exception is raised here, in Python, with a note saying where it happened
(:func:`reporting_exceptions`, :func:`run_numba`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import numpy as np

from pyvi._backend import require
from pyvi.hmc.chunks import first_chunk, run_in_chunks
from pyvi.hmc.settings import Settings, constants

__all__ = ["run_cpp", "run_numba", "numba_leapfrog", "compile_numba", "reporting_exceptions",
           "require_finite_starts"]


def _pending(face) -> Callable[[str], None] | None:
    """``raise_pending(where)`` of a face whose ``owner`` records exceptions of compiled user code
    (``pyvi._numba.targets.callback.Callback``), else None."""
    return getattr(getattr(face, "owner", None), "raise_pending", None)


@contextmanager
def reporting_exceptions(face, where: str):
    """Runs a native call on ``face``; a face whose ``owner`` records exceptions of compiled user
    code (``pyvi._numba.targets.callback.Callback``) raises the first one afterwards, with a note
    naming ``where``, in place of the call's result or of the error the call raised because of it
    (a NaN log density at a start)."""
    pending = _pending(face)
    if pending is None:
        yield
        return
    try:
        yield
    except ValueError:
        pending(where)
        raise
    pending(where)


def require_finite_starts(log_prob: np.ndarray, grad: np.ndarray, first_chain: int) -> None:
    """The ValueError for chains whose start has a non-finite log p, or a finite one with a
    non-finite gradient (a user's target may return that), naming the first such chain of the run
    (``log_prob`` (num_chains,) and ``grad`` (num_chains, dim) of chains ``first_chain ..``); the
    C++ core's twin is csrc/core/sampler_checks.hpp."""
    bad = np.flatnonzero(~np.isfinite(log_prob))
    if bad.size:
        raise ValueError(f"initial: the log density is not finite at chain {first_chain + bad[0]}'s start")
    bad = np.flatnonzero(~np.isfinite(grad).all(axis=1))
    if bad.size:
        raise ValueError(f"initial: the gradient of the log density is not finite at chain {first_chain + bad[0]}'s start")


def _first(initial: np.ndarray, settings: Settings) -> int:
    return first_chunk(initial.shape[0], settings.num_steps, initial.shape[1])


def run_cpp(face, initial: np.ndarray, settings: Settings, num_threads: int,
            progress: Callable[[int, int], object] | None = None,
            chunks: Iterable[int] | None = None, first_chain: int = 0,
            out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every chain on the C++ core, chunk by chunk (GIL released); ``num_threads`` 0 uses all
    cores. ``chunks``: fixed chunk sizes (tests). Row c of ``initial`` is chain ``first_chain + c``
    of the run (stream (seed, first_chain + c)). An exception of a user's log density stops the
    run after the chunk where it happened (see :func:`reporting_exceptions`). ``out``: arrays to
    fill instead of new ones (``pyvi._core.hmc_draws``'s, checked there)."""
    s = settings
    with reporting_exceptions(face, "the chains' start on backend 'cpp'"):
        run = require("cpp").hmc_start(face, initial, s.num_samples, s.num_warmup, s.step_size, s.num_steps,
                                       s.random_steps, s.adapt_step_size, s.target_accept,
                                       constants()["max_energy_error"], s.seed, first_chain, out)
    pending = _pending(face)

    def advance(begin: int, end: int) -> None:
        run.advance(end - begin, num_threads)
        if pending is not None:
            pending(f"HMC on backend 'cpp', in transitions {begin}..{end - 1} (warm-up first, {s.num_warmup} "
                    "transitions)")

    run_in_chunks(advance, run.num_iterations, _first(initial, settings), progress, sizes=chunks)
    return run.outputs


def _numba_record(settings: Settings, first_chain: int = 0):
    """The Numba sampler's settings record: the settings' and pyvi._core's constants', by name;
    ``first_chain``: where a distributed process's share of the chains starts (pyvi/distributed.py)."""
    from pyvi._numba.hmc import Settings as NumbaSettings

    return NumbaSettings(**{**settings.as_dict(), "seed": np.uint64(settings.seed)}, first_chain=first_chain,
                         **constants())


def _group_flags(face, num_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """``advance``'s per-group progress and failure flags."""
    from pyvi._numba.hmc.driver import group_size

    num_groups = -(-num_chains // group_size(face))
    return np.zeros(num_groups, np.int64), np.zeros(num_groups, np.bool_)


def compile_numba(face, dim: int) -> float:
    """Compiles (or loads from numba's disk cache) the Numba sampler for ``face`` (its ``start`` and
    ``advance``); returns the seconds it took (about 0 when this process has it already)."""
    require("numba")
    import numba

    from pyvi._numba.hmc import Chains, Draws, advance, start

    record = _numba_record(Settings.validated(num_samples=1, num_warmup=0, step_size=1.0, num_steps=1,
                                              random_steps=False, adapt_step_size=False, target_accept=0.8, seed=0))
    initial = np.zeros((1, dim))
    # A Chains record of the right types, without calling the log density (it may not be defined at 0).
    chains = Chains(*(np.zeros((1, dim)) if name in ("x", "grad") else
                      np.zeros((1, 4), np.uint64) if name == "rng" else np.zeros(1) for name in Chains._fields))
    draws = Draws(**require("cpp").hmc_draws(1, 1, dim))
    progress, failed = _group_flags(face, 1)
    types = lambda *arguments: tuple(numba.typeof(a) for a in arguments)  # noqa: E731
    began = time.perf_counter()
    start.compile(types(face, record, initial))
    advance.compile(types(face, record, chains, draws, 0, 1, progress, failed))
    return time.perf_counter() - began


def run_numba(face, initial: np.ndarray, settings: Settings, num_threads: int,
              progress: Callable[[int, int], object] | None = None,
              chunks: Iterable[int] | None = None, first_chain: int = 0,
              out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every chain on the Numba sampler, chunk by chunk, in a prange over ``num_threads`` threads
    (0: all). ``chunks``: fixed chunk sizes (tests). Row c of ``initial`` is chain
    ``first_chain + c`` of the run. An exception of a user's log density stops the run after the
    chunk where it happened and is raised with where (see :func:`_raise_failed_group`). ``out``:
    arrays to fill instead of new ones (``pyvi._core.hmc_draws``'s, checked there)."""
    require("numba")
    from pyvi._numba.hmc import Draws, advance, start
    from pyvi._numba.threads import num_threads as numba_threads

    record = _numba_record(settings, first_chain)
    try:
        chains = start(face, record, initial)
    except Exception as error:
        error.add_note("(raised by the target's log density at the chains' starts, backend 'numba')")
        raise
    require_finite_starts(chains.log_prob, chains.grad, first_chain)
    num_chains, dim = initial.shape
    draws = Draws(**require("cpp").hmc_draws(num_chains, settings.num_samples, dim, out))
    reached, failed = _group_flags(face, num_chains)

    def step(begin: int, end: int) -> None:
        advance(face, record, chains, draws, begin, end, reached, failed)
        if failed.any():
            _raise_failed_group(face, record, chains, draws, begin, end, int(np.argmax(failed)))

    with numba_threads(num_threads):
        run_in_chunks(step, settings.num_warmup + settings.num_samples, _first(initial, settings), progress,
                      sizes=chunks)
    return draws._asdict()


def _raise_failed_group(face, record, chains, draws, begin: int, end: int, group: int) -> None:
    """Runs the chunk [begin, end) of a group that stopped on an exception again (its chains are
    still at ``begin``), alone and outside the prange, where the exception reaches Python; adds
    where it happened."""
    from pyvi._numba.hmc.driver import group_size, run_group

    size = group_size(face)
    first = group * size
    count = min(size, chains.x.shape[0] - first)
    reached = np.zeros(1, np.int64)
    where = f"chain {first}" if count == 1 else f"one of chains {first}..{first + count - 1}"
    try:
        run_group(face, record, chains, draws, begin, end, reached, group)
    except Exception as error:
        it = int(reached[0])
        phase = "warm-up" if it < record.num_warmup else "sampling"
        error.add_note(f"(raised by the target's log density in {where}, transition {it} ({phase}), backend "
                       "'numba'; the run's draws were discarded)")
        raise
    raise RuntimeError(f"the target's log density raised an exception in compiled code in {where} (backend 'numba'), "
                       "but not when those chains ran again (does it depend on anything but its arguments?); the "
                       "run's draws were discarded")


def numba_leapfrog(face, position: np.ndarray, momentum: np.ndarray, step_size: float, num_steps: int):
    """The Numba sampler's leapfrog on one lane: ``(position, momentum, log_prob)`` at the end."""
    require("numba")
    from pyvi._numba.hmc import integrate

    x, p = position.copy(), momentum.copy()
    log_prob = integrate(face, x, p, step_size, num_steps)
    return x, p, float(log_prob)
