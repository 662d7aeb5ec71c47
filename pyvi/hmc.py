"""Hamiltonian Monte Carlo: leapfrog integrator, fixed or random path length, many chains,
dual-averaging step-size adaptation, divergence detection and convergence diagnostics.

Three backends run the same algorithm:

- ``"cpp"``: ``pyvi._core``; the leapfrog loop in C++, GIL released, chains on parallel threads.
- ``"numba"``: ``pyvi._numba.hmc``; chains in a ``prange``. Uses the same random stream as the C++
  backend, so both give the same draws for one seed.
- ``"numpy"``: a readable Python loop over numpy (the baseline); it also takes any
  :class:`pyvi.targets.LogDensity`.

Results depend only on ``seed``, never on the thread count: chain ``c`` draws from its own stream.

References:
    Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Sec. 3.2, arXiv:1111.4246.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434
    (divergences).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyvi import diagnostics
from pyvi._backend import require
from pyvi._validate import as_float_array, choice, count, positive_float, probability, seed_value

__all__ = ["sample", "leapfrog", "HMCResult", "BACKENDS", "MAX_ENERGY_ERROR"]

BACKENDS = ("cpp", "numba", "numpy")
#: A transition whose energy error H(end) - H(start) exceeds this is flagged divergent (as Stan).
MAX_ENERGY_ERROR = 1000.0
# Dual averaging constants of Stan (Hoffman & Gelman 2014, Sec. 3.2.1).
_GAMMA, _KAPPA, _T0 = 0.05, 0.75, 10.0


@dataclass(frozen=True)
class HMCResult:
    """Draws and per-draw statistics of an HMC run (ArviZ's chain/draw layout).

    Attributes:
        samples: ``(num_chains, num_samples, dim)`` draws after warm-up.
        log_prob: ``(num_chains, num_samples)`` log density at each draw.
        accept_prob: ``(num_chains, num_samples)`` Metropolis acceptance probability min(1, e^-dH).
        divergent: ``(num_chains, num_samples)`` energy error above ``MAX_ENERGY_ERROR`` (or not finite).
        num_steps: ``(num_chains, num_samples)`` leapfrog steps taken.
        step_size: ``(num_chains,)`` step size used for sampling (after adaptation).
        backend: which backend ran.
    """

    samples: np.ndarray
    log_prob: np.ndarray
    accept_prob: np.ndarray
    divergent: np.ndarray
    num_steps: np.ndarray
    step_size: np.ndarray
    backend: str
    settings: dict = field(default_factory=dict, repr=False)

    @property
    def num_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def num_divergent(self) -> int:
        return int(self.divergent.sum())

    @property
    def mean_accept_prob(self) -> float:
        return float(self.accept_prob.mean()) if self.accept_prob.size else float("nan")

    @cached_property
    def rhat(self) -> np.ndarray:
        """Rank-normalised split R-hat per dimension (pyvi.diagnostics.split_rhat)."""
        return diagnostics.split_rhat(self.samples)

    @cached_property
    def ess_bulk(self) -> np.ndarray:
        """Bulk effective sample size per dimension (pyvi.diagnostics.ess_bulk)."""
        return diagnostics.ess_bulk(self.samples)

    def flat_samples(self) -> np.ndarray:
        """All chains' draws stacked: ``(num_chains * num_samples, dim)``."""
        return self.samples.reshape(-1, self.samples.shape[-1])

    def summary(self) -> dict:
        """Plain-number summary (JSON-ready): mean, sd, R-hat, bulk ESS per dimension, acceptance,
        divergences, step sizes."""
        flat = self.flat_samples()
        return {
            "backend": self.backend,
            "num_chains": self.num_chains,
            "num_samples": self.samples.shape[1],
            "mean": flat.mean(axis=0).tolist(),
            "sd": flat.std(axis=0, ddof=1).tolist() if len(flat) > 1 else [float("nan")] * flat.shape[1],
            "rhat": self.rhat.tolist(),
            "ess_bulk": self.ess_bulk.tolist(),
            "mean_accept_prob": self.mean_accept_prob,
            "num_divergent": self.num_divergent,
            "step_size": self.step_size.tolist(),
        }


def _initial_positions(initial, num_chains: int, dim: int) -> np.ndarray:
    initial = as_float_array(initial, "initial", ndim=(1, 2))
    if initial.ndim == 1:
        if initial.shape != (dim,):
            raise ValueError(f"initial must have shape ({dim},) or (num_chains, {dim}), got {initial.shape}")
        initial = np.broadcast_to(initial, (num_chains, dim))
    elif initial.shape != (num_chains, dim):
        raise ValueError(f"initial must have shape ({dim},) or ({num_chains}, {dim}), got {initial.shape}")
    return np.ascontiguousarray(initial, dtype=np.float64)


def _native_kind(target, backend: str):
    attribute = "core" if backend == "cpp" else "numba_params"
    if not hasattr(type(target), attribute):
        raise TypeError(
            f"backend {backend!r} runs targets the native core knows (Banana, Gaussian); "
            f"got {type(target).__name__}: use backend='numpy' for a Python log density"
        )
    return getattr(target, attribute)


def sample(
    target,
    initial,
    num_samples: int,
    num_warmup: int,
    step_size: float,
    num_steps: int,
    *,
    random_steps: bool = False,
    num_chains: int = 1,
    adapt_step_size: bool = True,
    target_accept: float = 0.8,
    seed: int = 0,
    backend: str = "cpp",
    num_threads: int | None = None,
) -> HMCResult:
    """Draws from ``target`` with HMC (identity mass matrix, leapfrog integrator).

    Args:
        target: a :class:`~pyvi.targets.Banana` or :class:`~pyvi.targets.Gaussian` (any backend),
            or any object with ``dim`` and ``log_prob_and_grad(x) -> (float, (dim,) array)``
            such as :class:`~pyvi.targets.LogDensity` (numpy backend).
        initial: start, ``(dim,)`` for every chain or ``(num_chains, dim)``; log p must be finite there.
        num_samples: draws kept per chain after warm-up.
        num_warmup: warm-up (burn-in) transitions per chain; the step size adapts during them when
            ``adapt_step_size``.
        step_size: leapfrog step size (the initial one when adapting).
        num_steps: leapfrog steps per transition L (its maximum if ``random_steps``).
        random_steps: draw L uniformly from 1..num_steps at every transition.
        num_chains: independent chains.
        adapt_step_size: dual averaging towards ``target_accept`` during warm-up (Stan's gamma=0.05,
            kappa=0.75, t0=10).
        target_accept: target mean acceptance probability, in (0, 1).
        seed: in [0, 2**64); chain c uses stream (seed, c).
        backend: ``"cpp"``, ``"numba"`` or ``"numpy"``.
        num_threads: threads for the chains (``cpp``: its own; ``numba``: ``numba.set_num_threads``).
            ``None`` uses all cores. Never changes the draws.

    Returns:
        An :class:`HMCResult`.

    Example:
        >>> from pyvi.targets import Banana
        >>> result = sample(Banana.default(), [1.0, 0.5], num_samples=500, num_warmup=500,
        ...                 step_size=0.05, num_steps=30, num_chains=4, seed=1)
        >>> result.samples.shape, bool(result.rhat.max() < 1.05)
        ((4, 500, 2), True)
    """
    backend = choice(backend, "backend", BACKENDS)
    num_chains = count(num_chains, "num_chains", minimum=1)
    num_samples = count(num_samples, "num_samples")
    num_warmup = count(num_warmup, "num_warmup")
    num_steps = count(num_steps, "num_steps", minimum=1)
    if num_steps > 2**31 - 1:
        raise ValueError(f"num_steps must be < 2**31, got {num_steps}")
    step_size = positive_float(step_size, "step_size")
    target_accept = probability(target_accept, "target_accept")
    seed = seed_value(seed)
    if not isinstance(random_steps, bool | np.bool_):
        raise TypeError("random_steps must be a bool")
    if not isinstance(adapt_step_size, bool | np.bool_):
        raise TypeError("adapt_step_size must be a bool")
    threads = 0 if num_threads is None else count(num_threads, "num_threads", minimum=1)
    dim = getattr(target, "dim", None)
    if not isinstance(dim, int) or not hasattr(target, "log_prob_and_grad"):
        raise TypeError("target must have an integer `dim` and a `log_prob_and_grad` method (see pyvi.targets)")
    initial = _initial_positions(initial, num_chains, dim)
    settings = dict(num_samples=num_samples, num_warmup=num_warmup, step_size=step_size, num_steps=num_steps,
                    random_steps=bool(random_steps), adapt_step_size=bool(adapt_step_size),
                    target_accept=target_accept, seed=seed)

    if backend == "cpp":
        core = require("cpp")
        out = core.hmc(_native_kind(target, "cpp"), initial, num_samples, num_warmup, step_size, num_steps,
                       bool(random_steps), bool(adapt_step_size), target_accept, MAX_ENERGY_ERROR, seed, threads)
    elif backend == "numba":
        numba = require("numba")
        kind, params = _native_kind(target, "numba")
        from pyvi._numba.hmc import sample_chains
        from pyvi._numba.targets import log_prob_and_grad as numba_log_prob

        for c in range(num_chains):
            if not math.isfinite(numba_log_prob(kind, params, initial[c].copy(), np.empty(dim))):
                raise ValueError(f"initial: the log density is not finite at chain {c}'s start")
        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
        try:
            arrays = sample_chains(kind, params, initial, num_samples, num_warmup, step_size, num_steps,
                                   bool(random_steps), bool(adapt_step_size), target_accept, MAX_ENERGY_ERROR,
                                   np.uint64(seed))
        finally:
            numba.set_num_threads(previous)
        out = dict(zip(("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"), arrays))
    else:
        out = _sample_numpy(target, initial, num_samples, num_warmup, step_size, num_steps,
                            bool(random_steps), bool(adapt_step_size), target_accept, seed)
    return HMCResult(backend=backend, settings=settings, **out)


def leapfrog(target, position, momentum, step_size: float, num_steps: int, *, backend: str = "cpp"):
    """Integrates Hamilton's equations for H = -log p(x) + |p|^2/2 with ``num_steps`` leapfrog steps.

    Args:
        target: as for :func:`sample`.
        position, momentum: ``(dim,)`` start.
        step_size: > 0.
        num_steps: >= 0.
        backend: ``"cpp"``, ``"numba"`` or ``"numpy"``.

    Returns:
        ``(position, momentum, log_prob)`` at the end.

    Example:
        >>> from pyvi.targets import Gaussian
        >>> x, p, _ = leapfrog(Gaussian([0.0], [[1.0]]), [1.0], [0.0], 0.01, 157, backend="numpy")
        >>> bool(abs(x[0]) < 0.01)
        True
    """
    backend = choice(backend, "backend", BACKENDS)
    step_size = positive_float(step_size, "step_size")
    num_steps = count(num_steps, "num_steps")
    dim = target.dim
    position = as_float_array(position, "position", ndim=1).copy()
    momentum = as_float_array(momentum, "momentum", ndim=1).copy()
    for name, value in (("position", position), ("momentum", momentum)):
        if value.shape != (dim,):
            raise ValueError(f"{name} must have shape ({dim},), got {value.shape}")
    if backend == "cpp":
        return require("cpp").leapfrog(_native_kind(target, "cpp"), position, momentum, step_size, num_steps)
    if backend == "numba":
        require("numba")
        from pyvi._numba.hmc import leapfrog as numba_leapfrog
        from pyvi._numba.targets import log_prob_and_grad as numba_log_prob

        kind, params = _native_kind(target, "numba")
        grad = np.empty(dim)
        log_prob = numba_log_prob(kind, params, position, grad)
        if num_steps:
            log_prob = numba_leapfrog(kind, params, position, momentum, grad, step_size, num_steps)
        return position, momentum, float(log_prob)
    log_prob, grad = target.log_prob_and_grad(position)
    for step in range(num_steps):
        momentum = momentum + 0.5 * step_size * grad
        position = position + step_size * momentum
        log_prob, grad = target.log_prob_and_grad(position)
        momentum = momentum + 0.5 * step_size * grad
    return position, momentum, float(log_prob)


def _sample_numpy(target, initial, num_samples, num_warmup, step_size, num_steps, random_steps, adapt,
                  target_accept, seed) -> dict:
    """The readable baseline: one Python loop per chain, the seed homework's HMC done right
    (the gradient at both half kicks, the momentum in the energy, rejections keep the old state)."""
    num_chains, dim = initial.shape
    streams = np.random.SeedSequence(seed).spawn(num_chains)
    out = {
        "samples": np.empty((num_chains, num_samples, dim)),
        "log_prob": np.empty((num_chains, num_samples)),
        "accept_prob": np.empty((num_chains, num_samples)),
        "divergent": np.empty((num_chains, num_samples), dtype=bool),
        "num_steps": np.empty((num_chains, num_samples), dtype=np.int32),
        "step_size": np.empty(num_chains),
    }
    for c in range(num_chains):
        rng = np.random.default_rng(streams[c])
        x = initial[c].copy()
        log_prob, grad = target.log_prob_and_grad(x)
        if not math.isfinite(log_prob):
            raise ValueError(f"initial: the log density is not finite at chain {c}'s start")
        eps = step_size
        mu, log_eps_bar, h_bar = math.log(10 * step_size), 0.0, 0.0
        for it in range(num_warmup + num_samples):
            path_length = int(rng.integers(1, num_steps + 1)) if random_steps else num_steps
            p = rng.standard_normal(dim)
            energy = -log_prob + 0.5 * p @ p
            x_new, grad_new, log_prob_new = x, grad, log_prob
            with np.errstate(over="ignore", invalid="ignore"):
                for _ in range(path_length):
                    p = p + 0.5 * eps * grad_new
                    x_new = x_new + eps * p
                    if not np.isfinite(x_new).all():  # blown up: never hand inf/NaN to the target
                        log_prob_new = -math.inf
                        break
                    log_prob_new, grad_new = target.log_prob_and_grad(x_new)
                    p = p + 0.5 * eps * grad_new
                energy_error = (-log_prob_new + 0.5 * p @ p) - energy
            if not energy_error == energy_error:  # NaN: treat as infinitely divergent
                energy_error = math.inf
            accept_prob = 1.0 if energy_error <= 0 else math.exp(-energy_error)
            if rng.random() < accept_prob:
                x, grad, log_prob = x_new, grad_new, log_prob_new
            if it < num_warmup:
                if adapt:
                    t = it + 1
                    h_bar = (1 - 1 / (t + _T0)) * h_bar + (target_accept - accept_prob) / (t + _T0)
                    log_eps = min(max(mu - math.sqrt(t) / _GAMMA * h_bar, -700.0), 700.0)
                    weight = t**-_KAPPA
                    log_eps_bar = weight * log_eps + (1 - weight) * log_eps_bar
                    eps = math.exp(log_eps_bar if t == num_warmup else log_eps)
                continue
            draw = it - num_warmup
            out["samples"][c, draw] = x
            out["log_prob"][c, draw] = log_prob
            out["accept_prob"][c, draw] = accept_prob
            out["divergent"][c, draw] = energy_error > MAX_ENERGY_ERROR
            out["num_steps"][c, draw] = path_length
        out["step_size"][c] = eps
    return out


def default_num_threads() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
