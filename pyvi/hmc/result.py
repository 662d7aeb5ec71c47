"""The result of an HMC run: draws and per-draw statistics in ArviZ's chain/draw layout, a short
repr, its summary (ArviZ's columns, :mod:`pyvi.summary`, with the run's checks) that prints as a
table, and its export to ArviZ (:mod:`pyvi.inference_data`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyvi import convergence
from pyvi.hmc import checks
from pyvi.summary import DEFAULT_HDI_PROB, column_names, format_table, summarize

__all__ = ["HMCResult", "HMCSummary"]


@dataclass(frozen=True, repr=False)
class HMCResult:
    """Draws and per-draw statistics of an HMC run (ArviZ's chain/draw layout).

    ``repr(result)`` is one line; ``print(result.summary())`` prints ArviZ's summary table per
    dimension (mean, sd, HDI, MCSE of the mean and sd, bulk and tail ESS, R-hat) with the acceptance,
    divergences, step sizes and the checks the run fails; ``result.to_arviz()`` exports the run.

    Attributes:
        samples: ``(num_chains, num_samples, dim)`` draws after warm-up.
        log_prob: ``(num_chains, num_samples)`` log density at each draw.
        accept_prob: ``(num_chains, num_samples)`` Metropolis acceptance probability min(1, e^-dH).
        divergent: ``(num_chains, num_samples)`` energy error above ``pyvi.hmc.MAX_ENERGY_ERROR``
            (or not finite).
        num_steps: ``(num_chains, num_samples)`` leapfrog steps taken.
        step_size: ``(num_chains,)`` step size used for sampling: the adapted one when the run
            adapted it (``settings["adapt_step_size"]``), else ``settings["step_size"]``.
        backend: which backend ran.
        settings: the run's settings (plain numbers), ``seed`` included (the one drawn when
            ``sample`` was given ``seed=None``).
        tree_depth: ``(num_chains, num_samples)`` NUTS: doublings of the trajectory kept (equal to
            ``max_tree_depth`` where the tree was cut at its limit); None for static HMC.
        energy: ``(num_chains, num_samples)`` NUTS: the Hamiltonian at the draw (for E-BFMI).
        energy_error: ``(num_chains, num_samples)`` NUTS: H at the draw minus H at the start.
        inv_metric: NUTS: the inverse metric M^-1 each chain sampled with, ``(num_chains, dim)``
            (identity, diagonal) or ``(num_chains, dim, dim)`` (dense).
        warmup_samples, warmup_log_prob, ...: NUTS with ``save_warmup=True``: the warm-up draws and
            their statistics, one ``warmup_<field>`` per per-draw field above.

    Example:
        >>> import pyvi
        >>> from pyvi.targets import Gaussian
        >>> result = pyvi.hmc.sample(Gaussian([0.0], [[1.0]]), [0.0], num_samples=400, num_warmup=200,
        ...                          step_size=0.5, num_steps=5, random_steps=True, num_chains=2, seed=0)
        >>> result  # doctest: +ELLIPSIS
        HMCResult(cpp: 2 chains x 400 draws, dim 1; step size 0.5 adapted to ...; acceptance 0...; 0 divergent)
    """

    samples: np.ndarray
    log_prob: np.ndarray
    accept_prob: np.ndarray
    divergent: np.ndarray
    num_steps: np.ndarray
    step_size: np.ndarray
    backend: str
    settings: dict = field(default_factory=dict)
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
        """Mean acceptance probability over every draw of every chain."""
        return float(self.accept_prob.mean())

    @cached_property
    def rhat(self) -> np.ndarray:
        """Rank-normalised split R-hat per dimension (pyvi.diagnostics.split_rhat)."""
        return convergence.split_rhat(self.samples)

    @cached_property
    def ess_bulk(self) -> np.ndarray:
        """Bulk effective sample size per dimension (pyvi.diagnostics.ess_bulk)."""
        return convergence.ess_bulk(self.samples)

    def flat_samples(self) -> np.ndarray:
        """All chains' draws stacked: ``(num_chains * num_samples, dim)``."""
        return self.samples.reshape(-1, self.samples.shape[-1])

    def _step_description(self) -> str:
        low, high = float(self.step_size.min()), float(self.step_size.max())
        used = f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g}..{high:.3g}"
        if self.settings.get("adapt_step_size") and self.settings.get("num_warmup", 0) > 0:
            return f"step size {self.settings['step_size']:.3g} adapted to {used}"
        return f"step size {used} (fixed)"

    def __repr__(self) -> str:
        chains, draws, dim = self.samples.shape
        return (f"HMCResult({self.backend}: {chains} chain{'s' if chains > 1 else ''} x {draws} draws, dim {dim}; "
                f"{self._step_description()}; acceptance {self.mean_accept_prob:.3f}; "
                f"{self.num_divergent} divergent)")

    def summary(self, hdi_prob: float = DEFAULT_HDI_PROB) -> HMCSummary:
        """ArviZ's summary columns per dimension (``mean``, ``sd``, ``hdi_3%``, ``hdi_97%``,
        ``mcse_mean``, ``mcse_sd``, ``ess_bulk``, ``ess_tail``, ``r_hat``: :func:`pyvi.summary.summarize`;
        ``rhat`` is ``r_hat`` under its older key), acceptance, divergences, step sizes, E-BFMI per
        chain when the run recorded energies, and the checks the run fails (:mod:`pyvi.hmc.checks`):
        a dict of plain numbers (JSON-ready) that prints as a table.

        Args:
            hdi_prob: the probability of the highest-density interval (ArviZ's default 0.94).
        """
        chains, draws, _ = self.samples.shape
        columns = summarize(self.samples, hdi_prob)  # diagnostics NaN below 4 draws per chain
        energy = getattr(self, "energy", None)
        return HMCSummary({
            "backend": self.backend,
            "num_chains": chains,
            "num_samples": draws,
            "num_warmup": self.settings.get("num_warmup"),
            "hdi_prob": hdi_prob,
            **columns,
            "rhat": columns["r_hat"],
            "mean_accept_prob": self.mean_accept_prob,
            "target_accept": self.settings.get("target_accept"),
            "num_divergent": self.num_divergent,
            **({"kernel": "nuts", "num_max_tree_depth": self.num_max_tree_depth,
                "mean_tree_depth": float(self.tree_depth.mean())}
               if self.tree_depth is not None and self.settings.get("kernel") == "nuts" else {}),
            "initial_step_size": self.settings.get("step_size"),
            "adapt_step_size": self.settings.get("adapt_step_size"),
            "step_size": self.step_size.tolist(),
            **({"e_bfmi": convergence.e_bfmi(energy).tolist()} if energy is not None and draws > 1 else {}),
            "notes": checks.problems(self) + ([] if draws >= checks.MIN_DRAWS_TO_CHECK else [
                f"{draws} draws per chain: too few to check R-hat and ESS (the checks need "
                f"{checks.MIN_DRAWS_TO_CHECK})"]),
        })

    def to_arviz(self, var_name: str = "x"):
        """The run as an ``arviz.InferenceData``: ``posterior`` and ``sample_stats`` under ArviZ's
        names (``lp``, ``acceptance_rate``, ``diverging``, ``n_steps``, ``step_size``, and
        ``energy``, ``energy_error``, ``tree_depth`` where recorded), warm-up groups when saved
        (:mod:`pyvi.inference_data`).

        Raises:
            ImportError: ArviZ is not installed (``pip install 'pyvi[arviz]'``).
        """
        from pyvi.inference_data import to_inference_data

        return to_inference_data(self, var_name)


class HMCSummary(dict):
    """:meth:`HMCResult.summary`: a dict of plain numbers that prints as a table (the run, ArviZ's
    columns per dimension, E-BFMI, the checks it fails)."""

    def __str__(self) -> str:
        warmup = f" after {self['num_warmup']} warm-up" if self.get("num_warmup") is not None else ""
        steps = np.asarray(self["step_size"])
        used = f"{steps.min():.4g}" if steps.min() == steps.max() else f"{steps.min():.4g} to {steps.max():.4g}"
        if self.get("adapt_step_size") and self.get("num_warmup"):
            step = f"step size: {self['initial_step_size']:.4g} initial, adapted during warm-up to {used}"
        else:
            step = f"step size: {used} (fixed)"
        total = self["num_chains"] * self["num_samples"]
        target = f" (target {self['target_accept']:g})" if self.get("adapt_step_size") else ""
        lines = [
            f"HMC ({self['backend']}): {self['num_chains']} chain{'s' if self['num_chains'] > 1 else ''} x "
            f"{self['num_samples']} draws{warmup}",
            step,
            f"acceptance {self['mean_accept_prob']:.3f}{target}; divergent transitions: {self['num_divergent']} of "
            f"{total}",
            "",
            format_table({name: self[name] for name in column_names(self.get("hdi_prob", DEFAULT_HDI_PROB))}),
        ]
        if "e_bfmi" in self:
            lines.append("E-BFMI per chain: " + ", ".join(f"{value:.3f}" for value in self["e_bfmi"]))
        lines += [f"note: {note}" for note in self["notes"]]
        return "\n".join(lines)

    __repr__ = __str__
