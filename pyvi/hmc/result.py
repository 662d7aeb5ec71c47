"""The result of an HMC run: draws and per-draw statistics in ArviZ's chain/draw layout, its summary
(ArviZ's columns, :mod:`pyvi.summary`) and its export to ArviZ (:mod:`pyvi.inference_data`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyvi import diagnostics
from pyvi.summary import DEFAULT_HDI_PROB, summarize

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

    def summary(self, hdi_prob: float = DEFAULT_HDI_PROB) -> dict:
        """Plain-number summary (JSON-ready): ArviZ's summary columns per dimension (mean, sd, HDI,
        mcse_mean, mcse_sd, ess_bulk, ess_tail, r_hat: :func:`pyvi.summary.summarize`; ``rhat`` is
        ``r_hat`` under its older key), acceptance, divergences, step sizes, and E-BFMI per chain
        when the run recorded energies."""
        flat = self.flat_samples()
        columns = summarize(self.samples, hdi_prob) if self.samples.shape[1] else {}
        energy = getattr(self, "energy", None)
        extra = {"e_bfmi": diagnostics.e_bfmi(energy).tolist()} if energy is not None and energy.shape[1] > 1 else {}
        return columns | extra | {
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

    def to_arviz(self, var_name: str = "x"):
        """The run as an ``arviz.InferenceData``: ``posterior`` and ``sample_stats`` under ArviZ's
        names (``lp``, ``acceptance_rate``, ``diverging``, ``n_steps``, ``step_size``, and
        ``energy``, ``tree_depth`` where recorded), warm-up groups when saved
        (:mod:`pyvi.inference_data`).

        Raises:
            ImportError: ArviZ is not installed (``pip install 'pyvi[arviz]'``).
        """
        from pyvi.inference_data import to_inference_data

        return to_inference_data(self, var_name)
