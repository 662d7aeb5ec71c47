"""NUTS runs: their settings, validated once for every backend, and the three backends' runners.

``pyvi.hmc.sample(..., kernel="nuts")`` (or :func:`pyvi.hmc.nuts`) comes here, and so does static
HMC with a diagonal or dense metric (or with save_warmup, thin, init_jitter): the same per-chain
driver and warm-up, with the static kernel. The C++ core
(csrc/core/hmc/nuts*.hpp) and the Numba twin (pyvi/_numba/hmc/nuts*.py) draw the same numbers
from the same streams and give the same draws; the numpy reference (:mod:`pyvi.hmc.reference_nuts`)
runs the same algorithm on numpy's generator. Every backend fills the arrays
``pyvi._core.nuts_draws`` defines, then :func:`to_result` splits off the warm-up rows.

Row c of a runner's ``initial`` is chain ``first_chain + c`` of the run (its random stream is
(seed, first_chain + c)): under torchrun each process runs its block of chains
(:func:`pyvi.distributed.run_chains`). An exception of the target's log density is raised with a
note naming where it happened, as static HMC's (:mod:`pyvi.hmc.native`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pyvi._backend import require
from pyvi._validate import choice, positive_float, probability, seed_value
from pyvi.hmc.native import _pending, reporting_exceptions, require_finite_starts
from pyvi.hmc.result import HMCResult
from pyvi.hmc.settings import MAX_INT32, constants, native_count, random_seed

__all__ = ["NutsSettings", "METRICS", "run_cpp", "run_numba", "run_numpy", "to_result", "nuts_constants"]

METRICS = ("identity", "diag", "dense")

#: The per-draw outputs, split into warm-up and sampling rows.
_PER_DRAW = ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "tree_depth", "energy", "energy_error")


def _in_chunks(advance, num_iterations: int, initial: np.ndarray, s: NutsSettings, progress, chunks) -> None:
    """``advance(begin, end)`` over the run's iterations: in chunks (pyvi.hmc.chunks) when that module
    is there, else in one call."""
    try:
        from pyvi.hmc.chunks import first_chunk, run_in_chunks
    except ImportError:  # before the chunked driver: one call
        advance(0, num_iterations)
        if progress is not None:
            progress(num_iterations, num_iterations)
        return
    # A NUTS iteration costs up to 2^max_tree_depth steps: size the first chunk for ~2^5 of them.
    steps = s.num_steps if s.kernel == "hmc" else 2 ** min(s.max_tree_depth, 5)
    run_in_chunks(advance, num_iterations, first_chunk(initial.shape[0], steps, initial.shape[1]), progress,
                  sizes=chunks)


def nuts_constants() -> dict[str, int]:
    """Stan's window sizes (``init_buffer`` 75, ``base_window`` 25, ``term_buffer`` 50) and the
    largest ``max_tree_depth``, from ``pyvi._core``."""
    return dict(require("cpp").nuts_constants)


@dataclass(frozen=True)
class NutsSettings:
    """What one NUTS run does, the same for every backend (see :func:`pyvi.hmc.sample`)."""

    num_samples: int
    num_warmup: int
    thin: int
    save_warmup: bool
    step_size: float
    max_tree_depth: int
    metric: str
    adapt_step_size: bool
    adapt_metric: bool
    target_accept: float
    seed: int
    kernel: str = "nuts"  # or "hmc": static HMC with num_steps (random_steps) on the per-chain driver
    num_steps: int = 1
    random_steps: bool = False

    @classmethod
    def validated(cls, *, num_samples, num_warmup, thin, save_warmup, step_size, max_tree_depth, metric,
                  adapt_step_size, adapt_metric, target_accept, seed, kernel="nuts", num_steps=1,
                  random_steps=False) -> NutsSettings:
        num_samples = native_count(num_samples, "num_samples", minimum=1, maximum=MAX_INT32)
        num_warmup = native_count(num_warmup, "num_warmup", maximum=MAX_INT32)
        for name, flag in (("save_warmup", save_warmup), ("adapt_step_size", adapt_step_size),
                           ("adapt_metric", adapt_metric), ("random_steps", random_steps)):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if not isinstance(metric, str):
            raise TypeError(f"metric must be a str, got {type(metric).__name__}")
        return cls(
            num_samples=num_samples,
            num_warmup=num_warmup,
            thin=native_count(thin, "thin", minimum=1, maximum=MAX_INT32),
            save_warmup=bool(save_warmup),
            step_size=positive_float(step_size, "step_size"),
            max_tree_depth=native_count(max_tree_depth, "max_tree_depth", minimum=1,
                                        maximum=nuts_constants()["max_tree_depth"]),
            metric=choice(metric, "metric", METRICS),
            adapt_step_size=bool(adapt_step_size),
            adapt_metric=bool(adapt_metric),
            target_accept=probability(target_accept, "target_accept"),
            seed=random_seed() if seed is None else seed_value(seed),
            kernel=choice(kernel, "kernel", ("nuts", "hmc")),
            num_steps=native_count(num_steps, "num_steps", minimum=1, maximum=MAX_INT32),
            random_steps=bool(random_steps),
        )

    @property
    def warmup_rows(self) -> int:
        return -(-self.num_warmup // self.thin) if self.save_warmup else 0

    @property
    def rows(self) -> int:
        return self.warmup_rows + -(-self.num_samples // self.thin)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_cpp(face, initial: np.ndarray, s: NutsSettings, num_threads: int, progress=None, chunks=None,
            first_chain: int = 0, out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every chain on the C++ core, chunk by chunk (GIL released); ``num_threads`` 0 uses all cores.
    ``progress(done, total)`` after each chunk; ``chunks``: fixed chunk sizes (tests). An exception
    of a user's compiled log density stops the run after the chunk where it happened
    (:func:`pyvi.hmc.native.reporting_exceptions`). ``out``: arrays to fill instead of new ones
    (``pyvi._core.nuts_draws``'s, checked there)."""
    with reporting_exceptions(face, "the chains' start on backend 'cpp'"):
        run = require("cpp").nuts_start(face, initial, s.num_samples, s.num_warmup, s.thin, s.save_warmup,
                                        s.step_size, s.max_tree_depth, s.metric, s.adapt_step_size, s.adapt_metric,
                                        s.target_accept, constants()["max_energy_error"], s.seed, s.kernel,
                                        s.num_steps, s.random_steps, first_chain, out)
    pending = _pending(face)

    def advance(begin: int, end: int) -> None:
        run.advance(end - begin, num_threads)
        if pending is not None:
            pending(f"{_name(s)} on backend 'cpp', in transitions {begin}..{end - 1} (warm-up first, "
                    f"{s.num_warmup} transitions)")

    _in_chunks(advance, run.num_iterations, initial, s, progress, chunks)
    return run.outputs


def _name(s: NutsSettings) -> str:
    return "NUTS" if s.kernel == "nuts" else "HMC"


def run_numba(face, initial: np.ndarray, s: NutsSettings, num_threads: int, progress=None, chunks=None,
              first_chain: int = 0, out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every chain on the Numba sampler, chunk by chunk, one compiled call per chain (GIL released)
    on ``num_threads`` threads (0: all cores). An exception of the target's log density reaches the
    caller from the chain's thread, with a note naming the chain and transition (the driver's
    :func:`~pyvi._numba.hmc.nuts_driver.advance`). ``out``: as :func:`run_cpp`'s."""
    require("numba")
    import os

    from pyvi._numba.hmc.nuts_driver import NutsDraws, NutsSettings as NumbaNutsSettings, advance, start

    c = constants()
    windows = nuts_constants()
    record = NumbaNutsSettings(
        num_samples=s.num_samples, num_warmup=s.num_warmup, thin=s.thin, save_warmup=s.save_warmup,
        step_size=s.step_size, max_tree_depth=s.max_tree_depth, metric=METRICS.index(s.metric),
        adapt_step_size=s.adapt_step_size, adapt_metric=s.adapt_metric, target_accept=s.target_accept,
        max_energy_error=c["max_energy_error"], seed=np.uint64(s.seed), init_buffer=windows["init_buffer"],
        term_buffer=windows["term_buffer"], base_window=windows["base_window"], static_hmc=s.kernel == "hmc",
        num_steps=s.num_steps, random_steps=s.random_steps, gamma=c["gamma"], kappa=c["kappa"],
        t0=c["t0"], max_log_step=c["max_log_step"], first_chain=first_chain)
    try:
        chains = start(face, record, initial)
    except Exception as error:
        error.add_note("(raised by the target's log density at the chains' starts, backend 'numba')")
        raise
    require_finite_starts(chains.log_prob[:, 0], chains.grad, first_chain)
    num_chains, dim = initial.shape
    arrays = require("cpp").nuts_draws(num_chains, s.rows, dim, s.metric == "dense", out)
    # One array type for every metric: a diagonal inv_metric travels as a (num_chains, 1, d) view.
    draws = NutsDraws(**{**arrays, "inv_metric": arrays["inv_metric"].reshape(num_chains, -1, dim)})
    threads = num_threads or os.cpu_count() or 1

    _in_chunks(lambda begin, end: advance(face, record, chains, draws, begin, end, threads),
               s.num_warmup + s.num_samples, initial, s, progress, chunks)
    return arrays


def run_numpy(target, initial: np.ndarray, s: NutsSettings, progress=None, first_chain: int = 0,
              out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every chain on the numpy reference, one after the other, on numpy's generator (chain c:
    ``SeedSequence(seed).spawn(n)[c]`` for any n); ``progress(done, total)`` after each chain
    (iterations of every chain, as the native runs count). ``out``: as :func:`run_cpp`'s."""
    from pyvi.hmc.reference import start_state
    from pyvi.hmc.reference_nuts import NumpyStream, sample_chain

    num_chains, dim = initial.shape
    arrays = require("cpp").nuts_draws(num_chains, s.rows, dim, s.metric == "dense", out)
    windows = nuts_constants()
    buffers = (windows["init_buffer"], windows["term_buffer"], windows["base_window"])
    starts = [start_state(target, initial[c].copy(), first_chain + c) for c in range(num_chains)]  # checked
    for c in range(num_chains):
        stream = np.random.SeedSequence(s.seed, spawn_key=(first_chain + c,))  # spawn()'s child first_chain + c
        rng = NumpyStream(np.random.default_rng(stream))
        rows, step_size, inv_mass = sample_chain(rng, target, starts[c].x, dataclasses.asdict(s),
                                                 constants()["max_energy_error"], buffers, chain=first_chain + c)
        for r, (x, log_prob, info) in enumerate(rows):
            arrays["samples"][c, r] = x
            arrays["log_prob"][c, r] = log_prob
            for name in ("accept_prob", "divergent", "num_steps", "tree_depth", "energy", "energy_error"):
                arrays[name][c, r] = getattr(info, name)
        arrays["step_size"][c] = step_size
        arrays["inv_metric"][c] = inv_mass
        if progress is not None:
            total = s.num_warmup + s.num_samples
            progress(total * (c + 1) // num_chains, total)
    return arrays


def to_result(arrays: dict[str, np.ndarray], s: NutsSettings, backend: str) -> HMCResult:
    """The backend's arrays as an :class:`HMCResult`, the warm-up rows (if saved) as ``warmup_*``."""
    split = s.warmup_rows
    fields = {name: arrays[name][:, split:] for name in _PER_DRAW}
    if s.save_warmup:
        fields.update({"warmup_" + name: arrays[name][:, :split] for name in _PER_DRAW})
    return HMCResult(backend=backend, settings=s.as_dict(), step_size=arrays["step_size"],
                     inv_metric=arrays["inv_metric"], **fields)
