"""The result of an HMC run: draws and per-draw statistics in ArviZ's chain/draw layout, a short
repr, and a printable summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyvi import diagnostics
from pyvi.hmc import checks

__all__ = ["HMCResult", "HMCSummary"]


@dataclass(frozen=True, repr=False)
class HMCResult:
    """Draws and per-draw statistics of an HMC run (ArviZ's chain/draw layout).

    ``repr(result)`` is one line; ``print(result.summary())`` prints a table per dimension (mean,
    sd, R-hat, bulk ESS) with the acceptance, divergences, step sizes and the checks the run fails.

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

    @property
    def num_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def num_divergent(self) -> int:
        return int(self.divergent.sum())

    @property
    def mean_accept_prob(self) -> float:
        """Mean acceptance probability over every draw of every chain."""
        return float(self.accept_prob.mean())

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

    def summary(self) -> HMCSummary:
        """Mean, sd, R-hat and bulk ESS per dimension, acceptance, divergences, step sizes and the
        checks the run fails (:mod:`pyvi.hmc.checks`): a dict of plain numbers (JSON-ready) that
        prints as a table."""
        flat = self.flat_samples()
        chains, draws, _ = self.samples.shape
        enough = draws >= 4  # what R-hat and ESS need
        nan = [float("nan")] * flat.shape[1]
        return HMCSummary({
            "backend": self.backend,
            "num_chains": chains,
            "num_samples": draws,
            "num_warmup": self.settings.get("num_warmup"),
            "mean": flat.mean(axis=0).tolist(),
            "sd": flat.std(axis=0, ddof=1).tolist() if len(flat) > 1 else nan,
            "rhat": self.rhat.tolist() if enough else nan,
            "ess_bulk": self.ess_bulk.tolist() if enough else nan,
            "mean_accept_prob": self.mean_accept_prob,
            "target_accept": self.settings.get("target_accept"),
            "num_divergent": self.num_divergent,
            "initial_step_size": self.settings.get("step_size"),
            "adapt_step_size": self.settings.get("adapt_step_size"),
            "step_size": self.step_size.tolist(),
            "notes": checks.problems(self) + ([] if draws >= checks.MIN_DRAWS_TO_CHECK else [
                f"{draws} draws per chain: too few to check R-hat and ESS (the checks need "
                f"{checks.MIN_DRAWS_TO_CHECK})"]),
        })


class HMCSummary(dict):
    """:meth:`HMCResult.summary`: a dict of plain numbers that prints as a table."""

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
            f"{'dim':>5} {'mean':>11} {'sd':>11} {'R-hat':>7} {'bulk ESS':>9}",
        ]
        for k, row in enumerate(zip(self["mean"], self["sd"], self["rhat"], self["ess_bulk"])):
            mean, sd, rhat, ess = row
            lines.append(f"{k:>5} {mean:>11.4g} {sd:>11.4g} {rhat:>7.3f} {ess:>9.0f}")
        lines += [f"note: {note}" for note in self["notes"]]
        return "\n".join(lines)

    __repr__ = __str__
