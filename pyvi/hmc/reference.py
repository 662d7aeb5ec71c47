"""The numpy HMC sampler: the readable reference, in the same pieces as the native ones.

State and Info records, the identity metric, the leapfrog, one transition, dual averaging, and the
driver that runs warm-up and sampling in chunks of iterations (csrc/core/hmc/ and pyvi/_numba/hmc/
have one file per piece). One Python loop per chain over numpy, so it runs any :class:`pyvi.targets.Target`; its
random numbers come from numpy (``SeedSequence(seed).spawn``), so its draws differ from the native
backends' (which share one stream) while following the same distribution.

References:
    Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Algorithm 5, arXiv:1111.4246.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pyvi._backend import require
from pyvi.hmc.chunks import run_in_chunks
from pyvi.hmc.settings import Settings, constants

__all__ = ["State", "Info", "leapfrog", "transition", "DualAveraging", "Chain", "start_state", "start", "advance",
           "sample_chains"]


@dataclass(frozen=True)
class State:
    """A chain's position with the log density and its gradient there (blackjax's HMCState)."""

    x: np.ndarray
    log_prob: float
    grad: np.ndarray


@dataclass(frozen=True)
class Info:
    """What one transition did (blackjax's HMCInfo)."""

    accept_prob: float
    energy_error: float  # H(end) - H(start); +inf when not finite
    divergent: bool
    num_steps: int


# -- the identity metric: p ~ N(0, I), K(p) = |p|^2 / 2, dx/dt = p --------------------------------


def sample_momentum(rng: np.random.Generator, dim: int) -> np.ndarray:
    return rng.standard_normal(dim)


def kinetic_energy(p: np.ndarray) -> float:
    return 0.5 * p @ p


# -- integrator, kernel, adaptation ----------------------------------------------------------------


def leapfrog(target, x, p, grad, step_size: float, num_steps: int):
    """``num_steps`` leapfrog steps (kick, drift, kick) from (x, p) with ``grad`` = d log p / dx at
    x; returns ``(x, p, grad, log_prob)`` at the end. A position that overflows ends the
    integration with log_prob = -inf: the target is never handed inf or NaN."""
    log_prob = math.nan
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(num_steps):
            p = p + 0.5 * step_size * grad
            x = x + step_size * p
            if not np.isfinite(x).all():
                return x, p, grad, -math.inf
            log_prob, grad = target.log_prob_and_grad(x)
            p = p + 0.5 * step_size * grad
    return x, p, grad, log_prob


def transition(rng: np.random.Generator, state: State, target, step_size: float, settings: Settings,
               max_energy_error: float) -> tuple[State, Info]:
    """One static-HMC transition: path length, momentum, leapfrog, Metropolis accept or reject."""
    num_steps = int(rng.integers(1, settings.num_steps + 1)) if settings.random_steps else settings.num_steps
    p = sample_momentum(rng, state.x.shape[0])
    energy = -state.log_prob + kinetic_energy(p)
    x, p, grad, log_prob = leapfrog(target, state.x, p, state.grad, step_size, num_steps)
    with np.errstate(over="ignore", invalid="ignore"):
        energy_error = (-log_prob + kinetic_energy(p)) - energy
    # Not finite (NaN or +inf after an overflow or a non-finite gradient, -inf after log p = +inf
    # from a user's target), or a position that overflowed: infinitely divergent, rejected.
    if not (math.isfinite(energy_error) and np.isfinite(x).all()):
        energy_error = math.inf
    accept_prob = 1.0 if energy_error <= 0 else math.exp(-energy_error)
    if rng.random() < accept_prob:
        state = State(x, log_prob, grad)
    return state, Info(accept_prob, energy_error, energy_error > max_energy_error, num_steps)


class DualAveraging:
    """Dual averaging of log(step size) towards ``target_accept`` (the arithmetic of
    csrc/core/hmc/dual_averaging.hpp, its constants read from pyvi._core)."""

    def __init__(self, step_size: float, target_accept: float):
        c = constants()
        self.gamma, self.kappa, self.t0, self.max_log_step = c["gamma"], c["kappa"], c["t0"], c["max_log_step"]
        self.mu = math.log(10.0 * step_size)  # shrinkage point
        self.target_accept = target_accept
        self.log_step = math.log(step_size)
        self.log_step_bar = 0.0
        self.h_bar = 0.0
        self.count = 0.0

    def update(self, info: Info) -> float:
        """Feeds one warm-up transition's info; returns the next step size."""
        self.count += 1.0
        eta = 1.0 / (self.count + self.t0)
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.target_accept - info.accept_prob)
        log_step = self.mu - math.sqrt(self.count) / self.gamma * self.h_bar
        self.log_step = min(max(log_step, -self.max_log_step), self.max_log_step)
        weight = self.count ** (-self.kappa)
        self.log_step_bar = weight * self.log_step + (1.0 - weight) * self.log_step_bar
        return math.exp(self.log_step)

    def final_step(self) -> float:
        """The step size to sample with once warm-up is over."""
        return math.exp(self.log_step_bar) if self.count > 0 else math.exp(self.log_step)


# -- driver -------------------------------------------------------------------------------------------


@dataclass
class Chain:
    """One chain between chunks of iterations: its state, stream, step size and adaptation."""

    state: State
    rng: np.random.Generator
    step_size: float
    adaptation: DualAveraging


def start_state(target, x: np.ndarray, chain: int) -> State:
    """The state at a chain's start, with a clear error for a target whose ``log_prob_and_grad``
    does not return one real number and a ``(dim,)`` gradient (checked once per chain: the
    leapfrog's calls are not checked) or whose log density or its gradient is not finite there; an
    exception the target raises gets a note naming the chain."""
    name = type(getattr(target, "target", target)).__name__
    try:
        log_prob, grad = target.log_prob_and_grad(x)
    except Exception as error:
        error.add_note(f"(raised by the target's log density at chain {chain}'s start, backend 'numpy')")
        raise
    if np.ndim(log_prob) != 0 or np.iscomplexobj(log_prob):
        shape = f"an array of shape {np.shape(log_prob)}" if np.ndim(log_prob) else type(log_prob).__name__
        raise TypeError(f"{name}.log_prob_and_grad must return log p as one real number, got {shape} at "
                        f"chain {chain}'s start")
    grad = np.asarray(grad)
    if grad.shape != x.shape or grad.dtype.kind not in "fiub":
        raise TypeError(f"{name}.log_prob_and_grad must return a real gradient of shape {x.shape}, got "
                        f"{grad.dtype} of shape {grad.shape} at chain {chain}'s start")
    if not math.isfinite(log_prob):
        raise ValueError(f"initial: the log density is not finite at chain {chain}'s start")
    if not np.isfinite(grad).all():
        raise ValueError(f"initial: the gradient of the log density is not finite at chain {chain}'s start")
    return State(x, float(log_prob), grad.astype(np.float64, copy=False))


def start(target, initial: np.ndarray, settings: Settings, first_chain: int = 0) -> list[Chain]:
    """Every chain at its row of ``initial``, row c being chain ``first_chain + c`` of the run;
    chain c's random numbers from ``SeedSequence(seed).spawn(n)[c]`` for any n, built directly
    (``spawn``'s child i is the sequence with spawn_key (i,))."""
    def stream(c: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(first_chain + c,)))

    return [Chain(start_state(target, initial[c].copy(), first_chain + c), stream(c), settings.step_size,
                  DualAveraging(settings.step_size, settings.target_accept)) for c in range(initial.shape[0])]


def advance(target, chains: list[Chain], settings: Settings, draws: dict[str, np.ndarray], begin: int, end: int):
    """Iterations [begin, end) of every chain: warm-up (adapting the step size when asked), then
    sampling, recorded into ``draws`` (the outputs of ``pyvi._core.hmc_draws``)."""
    max_energy_error = constants()["max_energy_error"]
    for c, chain in enumerate(chains):
        state, step_size, adaptation = chain.state, chain.step_size, chain.adaptation
        for it in range(begin, end):
            try:
                state, info = transition(chain.rng, state, target, step_size, settings, max_energy_error)
            except Exception as error:
                phase = "warm-up" if it < settings.num_warmup else "sampling"
                error.add_note(f"(raised by the target's log density in chain {c}, transition {it} ({phase}), "
                               "backend 'numpy')")
                raise
            if it < settings.num_warmup:
                if settings.adapt_step_size:
                    step_size = adaptation.update(info)
                    if it + 1 == settings.num_warmup:
                        step_size = adaptation.final_step()
                continue
            draw = it - settings.num_warmup
            draws["samples"][c, draw] = state.x
            draws["log_prob"][c, draw] = state.log_prob
            draws["accept_prob"][c, draw] = info.accept_prob
            draws["divergent"][c, draw] = info.divergent
            draws["num_steps"][c, draw] = info.num_steps
        chain.state, chain.step_size = state, step_size
        draws["step_size"][c] = step_size


def sample_chains(target, initial: np.ndarray, settings: Settings,
                  progress: Callable[[int, int], object] | None = None,
                  chunks: Iterable[int] | None = None, first_chain: int = 0,
                  out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Runs one chain per row of ``initial`` (row c: chain ``first_chain + c`` of the run), in
    chunks of iterations (:mod:`pyvi.hmc.chunks`); returns the outputs of ``pyvi._core.hmc_draws``
    filled in (``out``'s arrays when given). ``chunks``: fixed chunk sizes (tests)."""
    num_chains, dim = initial.shape
    draws = require("cpp").hmc_draws(num_chains, settings.num_samples, dim, out)
    chains = start(target, initial, settings, first_chain)
    run_in_chunks(lambda begin, end: advance(target, chains, settings, draws, begin, end),
                  settings.num_warmup + settings.num_samples, 1, progress, sizes=chunks)
    return draws
