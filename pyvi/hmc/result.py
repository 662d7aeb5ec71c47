"""The result of an HMC run: draws and per-draw statistics in ArviZ's chain/draw layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyvi import diagnostics

__all__ = ["HMCResult"]


@dataclass(frozen=True)
class HMCResult:
    """Draws and per-draw statistics of an HMC run (ArviZ's chain/draw layout).

    Attributes:
        samples: ``(num_chains, num_samples, dim)`` draws after warm-up.
        log_prob: ``(num_chains, num_samples)`` log density at each draw.
        accept_prob: ``(num_chains, num_samples)`` Metropolis acceptance probability min(1, e^-dH).
        divergent: ``(num_chains, num_samples)`` energy error above ``pyvi.hmc.MAX_ENERGY_ERROR``
            (or not finite).
        num_steps: ``(num_chains, num_samples)`` leapfrog steps taken.
        step_size: ``(num_chains,)`` step size used for sampling (after adaptation).
        backend: which backend ran.
        settings: the run's settings (plain numbers).
        tree_depth: ``(num_chains, num_samples)`` NUTS: doublings of the trajectory kept (equal to
            ``max_tree_depth`` where the tree was cut at its limit); None for static HMC.
        energy: ``(num_chains, num_samples)`` NUTS: the Hamiltonian at the draw (for E-BFMI).
        energy_error: ``(num_chains, num_samples)`` NUTS: H at the draw minus H at the start.
        inv_metric: NUTS: the inverse metric M^-1 each chain sampled with, ``(num_chains, dim)``
            (identity, diagonal) or ``(num_chains, dim, dim)`` (dense).
        warmup_samples, warmup_log_prob, ...: NUTS with ``save_warmup=True``: the warm-up draws and
            their statistics, one ``warmup_<field>`` per per-draw field above.
    """

    samples: np.ndarray
    log_prob: np.ndarray
    accept_prob: np.ndarray
    divergent: np.ndarray
    num_steps: np.ndarray
    step_size: np.ndarray
    backend: str
    settings: dict = field(default_factory=dict, repr=False)
    tree_depth: np.ndarray | None = field(default=None, repr=False)
    energy: np.ndarray | None = field(default=None, repr=False)
    energy_error: np.ndarray | None = field(default=None, repr=False)
    inv_metric: np.ndarray | None = field(default=None, repr=False)
    warmup_samples: np.ndarray | None = field(default=None, repr=False)
    warmup_log_prob: np.ndarray | None = field(default=None, repr=False)
    warmup_accept_prob: np.ndarray | None = field(default=None, repr=False)
    warmup_divergent: np.ndarray | None = field(default=None, repr=False)
    warmup_num_steps: np.ndarray | None = field(default=None, repr=False)
    warmup_tree_depth: np.ndarray | None = field(default=None, repr=False)
    warmup_energy: np.ndarray | None = field(default=None, repr=False)
    warmup_energy_error: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def num_divergent(self) -> int:
        return int(self.divergent.sum())

    @property
    def num_max_tree_depth(self) -> int:
        """NUTS: draws whose tree was cut at ``max_tree_depth`` (0 for static HMC)."""
        if self.tree_depth is None:
            return 0
        return int((self.tree_depth >= self.settings.get("max_tree_depth", np.inf)).sum())

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
