"""The native HMC backends: ``pyvi._core`` (C++) and ``pyvi._numba.hmc``, on a target's face.

Both run the same algorithm on the same random streams (chain c: xoshiro256++ stream (seed, c))
and fill the same outputs (``pyvi._core.hmc_draws``), so their draws are identical, bit for bit,
whatever the thread count or the grouping of chains.

Exceptions from a user's compiled log density (:class:`pyvi.targets.NumbaTarget`) cannot cross a
numba prange or the C++ core; both backends catch them where they happen, stop, and raise the
exception here, in Python, with a note saying where it happened (:func:`reporting_exceptions`,
:func:`run_numba`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from pyvi._backend import require
from pyvi.hmc.settings import Settings, constants

__all__ = ["run_cpp", "run_numba", "numba_leapfrog", "compile_numba", "reporting_exceptions"]


@contextmanager
def reporting_exceptions(face, where: str):
    """Runs a native call on ``face``; a face whose ``owner`` records exceptions of compiled user
    code (``pyvi._numba.targets.callback.Callback``) raises the first one afterwards, with a note
    naming ``where``, in place of the call's result or of the error the call raised because of it
    (a NaN log density at a start)."""
    owner = getattr(face, "owner", None)
    pending = getattr(owner, "raise_pending", None)
    if pending is None:
        yield
        return
    try:
        yield
    except ValueError:
        pending(where)
        raise
    pending(where)


def run_cpp(face, initial: np.ndarray, settings: Settings, num_threads: int) -> dict[str, np.ndarray]:
    """Every chain on the C++ core (GIL released); ``num_threads`` 0 uses all cores."""
    s = settings
    with reporting_exceptions(face, "HMC on backend 'cpp'"):
        return require("cpp").hmc(face, initial, s.num_samples, s.num_warmup, s.step_size, s.num_steps,
                                  s.random_steps, s.adapt_step_size, s.target_accept, constants()["max_energy_error"],
                                  s.seed, num_threads)


def _numba_arguments(face, initial: np.ndarray, settings: Settings):
    """``sample_chains``' arguments after the face: the settings record, the start, the draws, and
    each group's progress and failure flag."""
    from pyvi._numba.hmc import Draws, Settings as NumbaSettings
    from pyvi._numba.hmc.driver import group_size

    # The record's fields are the settings' and pyvi._core's constants', by name.
    record = NumbaSettings(**{**settings.as_dict(), "seed": np.uint64(settings.seed)}, **constants())
    num_chains, dim = initial.shape
    draws = Draws(**require("cpp").hmc_draws(num_chains, settings.num_samples, dim))
    num_groups = -(-num_chains // group_size(face))
    return record, initial, draws, np.zeros(num_groups, np.int64), np.zeros(num_groups, np.bool_)


def compile_numba(face, dim: int) -> float:
    """Compiles (or loads from numba's disk cache) the Numba sampler for ``face``; returns the seconds
    it took (about 0 when this process has it already)."""
    require("numba")
    import numba

    from pyvi._numba.hmc import first_non_finite_start, sample_chains

    settings = Settings.validated(num_samples=0, num_warmup=0, step_size=1.0, num_steps=1, random_steps=False,
                                  adapt_step_size=False, target_accept=0.8, seed=0)
    initial = np.zeros((1, dim))
    arguments = (face, *_numba_arguments(face, initial, settings))
    start = time.perf_counter()
    sample_chains.compile(tuple(numba.typeof(a) for a in arguments))
    first_non_finite_start.compile((numba.typeof(face), numba.typeof(initial)))
    return time.perf_counter() - start


def run_numba(face, initial: np.ndarray, settings: Settings, num_threads: int) -> dict[str, np.ndarray]:
    """Every chain on the Numba sampler, in a prange over ``num_threads`` threads (0: all)."""
    require("numba")
    from pyvi._numba.hmc import first_non_finite_start, sample_chains
    from pyvi._numba.threads import num_threads as numba_threads

    try:
        bad, what = first_non_finite_start(face, initial)
    except Exception as error:
        error.add_note("(raised by the target's log density at the chains' starts, backend 'numba')")
        raise
    if bad >= 0:
        quantity = "log density" if what == 1 else "gradient of the log density"
        raise ValueError(f"initial: the {quantity} is not finite at chain {bad}'s start")
    record, initial, draws, progress, failed = _numba_arguments(face, initial, settings)
    with numba_threads(num_threads):
        sample_chains(face, record, initial, draws, progress, failed)
    if failed.any():
        _raise_failed_group(face, record, initial, int(np.argmax(failed)))
    return draws._asdict()


def _raise_failed_group(face, record, initial: np.ndarray, group: int) -> None:
    """Runs the chains of a group that stopped on an exception again, alone and outside the
    prange, where the exception reaches Python; adds where it happened."""
    from pyvi._numba.hmc import Draws
    from pyvi._numba.hmc.driver import group_size, run_group

    num_chains, dim = initial.shape
    size = group_size(face)
    first = group * size
    count = min(size, num_chains - first)
    progress = np.zeros(1, np.int64)
    scratch = Draws(**require("cpp").hmc_draws(num_chains, record.num_samples, dim))
    chains = f"chain {first}" if count == 1 else f"one of chains {first}..{first + count - 1}"
    try:
        run_group(face, record, initial, scratch, progress, group)
    except Exception as error:
        it = int(progress[0])
        phase = "warm-up" if it < record.num_warmup else "sampling"
        error.add_note(f"(raised by the target's log density in {chains}, transition {it} ({phase}), backend "
                       "'numba'; the run's draws were discarded)")
        raise
    raise RuntimeError(f"the target's log density raised an exception in compiled code in {chains} (backend 'numba'), "
                       "but not when those chains ran again (does it depend on anything but its arguments?); the "
                       "run's draws were discarded")


def numba_leapfrog(face, position: np.ndarray, momentum: np.ndarray, step_size: float, num_steps: int):
    """The Numba sampler's leapfrog on one lane: ``(position, momentum, log_prob)`` at the end."""
    require("numba")
    from pyvi._numba.hmc import integrate

    x, p = position.copy(), momentum.copy()
    log_prob = integrate(face, x, p, step_size, num_steps)
    return x, p, float(log_prob)
