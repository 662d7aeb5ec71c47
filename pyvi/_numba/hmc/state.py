"""The records of the Numba sampler: settings, every chain between chunks, per-lane state,
transition info, draws.

State, Proposal and Info hold one row (or entry) per lane of a chain group (``lanes`` chains
integrated together, see :mod:`pyvi._numba.hmc.leapfrog`); Chains one per chain of the run. Their
C++ twins are in csrc/core/hmc/state.hpp and driver.hpp.
"""

from collections import namedtuple
from typing import NamedTuple

import numpy as np

from pyvi._backend import require

__all__ = ["Settings", "Chains", "State", "Proposal", "Info", "Draws"]


class Settings(NamedTuple):
    """One run's settings (validated by pyvi.hmc) and the sampler's constants (read from
    ``pyvi._core.hmc_constants``). Flat: a prange body cannot take a namedtuple nested in another."""

    num_samples: int
    num_warmup: int
    step_size: float  # the initial one when adapting
    num_steps: int  # L, or its maximum when random_steps
    random_steps: bool
    adapt_step_size: bool
    target_accept: float
    max_energy_error: float
    seed: np.uint64
    # Stan's dual-averaging constants (csrc/core/hmc/dual_averaging.hpp).
    gamma: float
    kappa: float
    t0: float
    max_log_step: float


class Chains(NamedTuple):
    """Every chain of a run between chunks of iterations, one row per chain (csrc/core/hmc/driver.hpp
    keeps the same in its chain groups): its state, random stream, step size and dual averaging
    (the fields of :class:`~pyvi._numba.hmc.dual_averaging.DualAveraging`). Flat, like Settings."""

    x: np.ndarray  # (num_chains, d)
    grad: np.ndarray  # (num_chains, d)
    log_prob: np.ndarray  # (num_chains,)
    rng: np.ndarray  # (num_chains, 4) uint64 xoshiro256++ states
    step_size: np.ndarray  # (num_chains,)
    mu: np.ndarray  # (num_chains,) dual averaging's shrinkage point
    log_step: np.ndarray  # (num_chains,)
    log_step_bar: np.ndarray  # (num_chains,)
    h_bar: np.ndarray  # (num_chains,)
    count: np.ndarray  # (num_chains,)


class State(NamedTuple):
    """Each lane's position, its log density and gradient (blackjax's HMCState)."""

    x: np.ndarray  # (lanes, d)
    grad: np.ndarray  # (lanes, d)
    log_prob: np.ndarray  # (lanes,)


class Proposal(NamedTuple):
    """Each lane's trajectory during a transition: its end point and the Hamiltonian at its start."""

    x: np.ndarray  # (lanes, d)
    p: np.ndarray  # (lanes, d) momentum
    grad: np.ndarray  # (lanes, d)
    log_prob: np.ndarray  # (lanes,)
    energy: np.ndarray  # (lanes,) H at the start
    num_steps: np.ndarray  # (lanes,) int64 path length


class Info(NamedTuple):
    """What each lane's last transition did (blackjax's HMCInfo): fed to the adaptation, recorded."""

    accept_prob: np.ndarray  # (lanes,)
    energy_error: np.ndarray  # (lanes,) H(end) - H(start), +inf when not finite
    divergent: np.ndarray  # (lanes,) bool
    num_steps: np.ndarray  # (lanes,) int64


#: The sampler's outputs, as ``pyvi._core.hmc_draws`` allocates them: the C++ core defines their
#: names, shapes and dtypes, and the Numba driver fills them by name.
Draws = namedtuple("Draws", require("cpp").hmc_outputs)
