"""Hamiltonian Monte Carlo: leapfrog integrator, fixed or random path length, many chains,
dual-averaging step-size adaptation, divergence detection and convergence diagnostics.

Three backends run the same algorithm, each in the same pieces (blackjax's shape): a State and an
Info record, the metric, the leapfrog, one transition ``(rng, state) -> (state, info)``, dual
averaging fed with the info, and a driver that runs warm-up and sampling and records the draws:

- ``"cpp"``: ``pyvi._core`` (csrc/core/hmc/); GIL released, chains on parallel threads.
- ``"numba"``: ``pyvi._numba.hmc``; chains in a ``prange``. Uses the same random stream as the C++
  backend, so both give the same draws for one seed.
- ``"numpy"``: :mod:`pyvi.hmc.reference`, a readable Python loop over numpy (the baseline); it
  runs any :class:`pyvi.targets.Target`.
- ``"torch"``: :mod:`pyvi.hmc.torch_backend`, every chain in lockstep as one tensor on the CPU or
  a GPU (one batched gradient per leapfrog step, transitions replayed from CUDA graphs); runs a
  target's torch face (:class:`pyvi.targets.TorchTarget`, the built-in targets). Its draws come
  from one torch generator per run, so they differ from the other backends'.

The native backends run a target's face (:mod:`pyvi.targets.base`). Results depend only on
``seed``, never on the thread count: chain ``c`` draws from its own stream (``torch``: the run's
generator). A run goes in chunks of iterations (:mod:`pyvi.hmc.chunks`): between chunks a progress
callback runs and Ctrl-C stops it. After a run, :mod:`pyvi.hmc.checks` warns (:class:`HMCWarning`)
on divergences, R-hat > 1.01 and bulk ESS < 100 per chain. The sampler's
constants (dual averaging, the divergence threshold ``MAX_ENERGY_ERROR``) are the C++ core's.

References:
    Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Sec. 3.2, arXiv:1111.4246.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434
    (divergences).
"""

from __future__ import annotations

from pyvi.hmc.checks import HMCWarning
from pyvi.hmc.result import HMCResult, HMCSummary
from pyvi.hmc.sampler import BACKENDS, leapfrog, sample
from pyvi.hmc.settings import constants

__all__ = ["sample", "leapfrog", "HMCResult", "HMCSummary", "HMCWarning", "BACKENDS", "MAX_ENERGY_ERROR"]


def __getattr__(name: str):
    # MAX_ENERGY_ERROR is read from pyvi._core on first use, so that `import pyvi` never needs it.
    if name == "MAX_ENERGY_ERROR":
        return constants()["max_energy_error"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
