"""How far a sampler's draws are from an exactly known posterior: ``score(samples, target)``.

The target must know its answer: i.i.d. draws ``target.sample_exact(num_samples, seed)`` and the
exact ``target.posterior_moments() -> (mean, cov)`` (pyvi's :class:`~pyvi.targets.Gaussian`,
:class:`~pyvi.targets.Funnel`, :class:`~pyvi.targets.GaussianMixture`,
:class:`~pyvi.targets.HybridRosenbrock`, :class:`~pyvi.targets.Banana`). Any sampler's draws are
scored the same way, so pyvi's HMC, NUTS and VI and NumPyro's or Stan's draws compare on one scale:

- ``kl``: the k-NN estimate of KL(draws || exact) in nats (Wang, Kulkarni & Verdu 2009, pyvi's
  :func:`pyvi.divergence.knn_kl_estimate`) against as many exact draws, with its standard error
  (for chains, counting their autocorrelation). It sees the whole distribution: missed modes, a
  funnel's neck, a heavy tail.
- ``mean_error``, ``sd_error``: per dimension, (mean - exact mean) / exact sd and
  sd / exact sd - 1, in posterior-sd units; these see small biases the k-NN estimate's noise hides.
- ``ess_bulk``, ``ess_tail``: the draws' effective sample sizes (:mod:`pyvi.diagnostics`), so a score
  can be put per effective draw or per second.

References:
    Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
    k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009.
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021), arXiv:1903.08008.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pyvi import convergence
from pyvi._validate import as_float_array, count
from pyvi.divergence import knn_kl_estimate

__all__ = ["Score", "score", "as_chains"]


@dataclass(frozen=True)
class Score:
    """The distance of a set of draws to the exact posterior (:func:`score`).

    Attributes:
        kl: k-NN estimate of KL(draws || exact) in nats (about 0 for exact draws; a few hundredths
            of bias either way at small n, more in high dimension).
        kl_standard_error: the estimate's standard error: std of its terms / sqrt(n) for independent
            draws (a 2-D array), / sqrt(ESS of the terms) for chains.
        mean_error: ``(dim,)`` (mean - exact mean) / exact sd.
        sd_error: ``(dim,)`` sd / exact sd - 1.
        ess_bulk: ``(dim,)`` bulk effective sample size of the draws (NaN for fewer than 4 draws per
            chain).
        ess_tail: ``(dim,)`` tail effective sample size.
        num_draws: draws scored (all chains).
        num_exact: exact draws compared against.
    """

    kl: float
    kl_standard_error: float
    mean_error: np.ndarray
    sd_error: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    num_draws: int
    num_exact: int

    @property
    def max_abs_mean_error(self) -> float:
        return float(np.max(np.abs(self.mean_error)))

    @property
    def max_abs_sd_error(self) -> float:
        return float(np.max(np.abs(self.sd_error)))

    def as_dict(self) -> dict:
        """Plain numbers (JSON-ready)."""
        return {"kl": self.kl, "kl_standard_error": self.kl_standard_error, "mean_error": self.mean_error.tolist(),
                "sd_error": self.sd_error.tolist(), "ess_bulk": self.ess_bulk.tolist(),
                "ess_tail": self.ess_tail.tolist(), "num_draws": self.num_draws, "num_exact": self.num_exact}


def as_chains(samples, dim: int | None = None) -> np.ndarray:
    """Draws as a ``(num_chains, num_draws, dim)`` float64 array, from any sampler's output:

    - an array (numpy, torch, JAX) ``(num_chains, num_draws, dim)``, or ``(num_draws, dim)`` for one
      chain (VI draws, i.i.d. draws);
    - an object with a ``samples`` array (:class:`pyvi.hmc.HMCResult`);
    - a mapping of names to ``(num_chains, num_draws, ...)`` arrays, as NumPyro's
      ``mcmc.get_samples(group_by_chain=True)``: the variables are flattened and concatenated along
      the last axis in the mapping's order.

    Raises:
        ValueError: the shape does not fit (or the last axis is not ``dim`` when given), values
            not finite.
    """
    if hasattr(samples, "samples") and not isinstance(samples, Mapping):
        samples = samples.samples
    if isinstance(samples, Mapping):
        if not samples:
            raise ValueError("samples is an empty mapping")
        parts = []
        for name, value in samples.items():
            array = as_float_array(np.asarray(value), f"samples[{name!r}]")
            if array.ndim < 2:
                raise ValueError(f"samples[{name!r}] must be (num_chains, num_draws, ...), got shape {array.shape}")
            parts.append(array.reshape(array.shape[0], array.shape[1], -1))
        if len({part.shape[:2] for part in parts}) != 1:
            raise ValueError("the variables of samples must share (num_chains, num_draws), got "
                             + ", ".join(str(part.shape[:2]) for part in parts))
        array = np.concatenate(parts, axis=-1)
    else:
        array = as_float_array(samples, "samples", ndim=(2, 3))
        if array.ndim == 2:
            array = array[None]
    if dim is not None and array.shape[-1] != dim:
        raise ValueError(f"samples must have the target's dimension {dim} on the last axis, got shape {array.shape}")
    if array.shape[0] * array.shape[1] < 2:
        raise ValueError(f"samples must hold at least 2 draws, got shape {array.shape}")
    return array


def score(samples, target, *, k: int = 5, num_exact: int | None = None, seed: int = 0,
          backend: str = "cpp") -> Score:
    """Score draws against ``target``'s exact posterior (module docstring).

    Args:
        samples: the draws (:func:`as_chains` lists the layouts taken).
        target: a target with ``sample_exact(num_samples, seed)`` and ``posterior_moments()``.
        k: neighbour rank of the k-NN KL estimate (5 trades a little bias for less variance).
        num_exact: exact draws to compare against; default as many as ``samples`` holds.
        seed: seed of the exact draws (the score is reproducible for a seed).
        backend: k-NN search backend (:func:`pyvi.divergence.knn_kl_estimate`).

    Returns:
        A :class:`Score`.

    Raises:
        TypeError: the target does not know its exact posterior.

    Example:
        >>> from pyvi.targets import Gaussian
        >>> target = Gaussian([0.0, 1.0], [[1.0, 0.3], [0.3, 2.0]])
        >>> result = score(target.sample_exact(4000, seed=1).reshape(4, 1000, 2), target)
        >>> abs(result.kl) < 0.05 and result.max_abs_mean_error < 0.1
        True
    """
    for method in ("sample_exact", "posterior_moments"):
        if not callable(getattr(target, method, None)):
            raise TypeError(f"score needs a target that knows its exact posterior (a `{method}` method); "
                            f"{type(target).__name__} has none")
    independent = not isinstance(samples, Mapping) and not hasattr(samples, "samples") and np.ndim(samples) == 2
    draws = as_chains(samples, getattr(target, "dim", None))
    flat = draws.reshape(-1, draws.shape[-1])
    num_exact = flat.shape[0] if num_exact is None else count(num_exact, "num_exact", minimum=1)
    exact = np.asarray(target.sample_exact(num_exact, seed=seed), dtype=np.float64).reshape(num_exact, -1)
    # Chains go in as chains: the standard error then counts their autocorrelation, and knn_kl_estimate
    # warns (AutocorrelationWarning) when their small steps bias the estimate.
    estimate = knn_kl_estimate(flat if independent else draws, exact, k=k, backend=backend)
    mean, cov = (np.asarray(moment, dtype=np.float64) for moment in target.posterior_moments())
    exact_sd = np.sqrt(np.diag(cov))
    sd = flat.std(axis=0, ddof=1)
    if draws.shape[1] >= 4:
        ess_bulk, ess_tail = convergence.ess_bulk(draws), convergence.ess_tail(draws)
    else:
        ess_bulk = ess_tail = np.full(flat.shape[1], np.nan)
    return Score(kl=float(estimate.value), kl_standard_error=float(estimate.standard_error),
                 mean_error=(flat.mean(axis=0) - mean) / exact_sd, sd_error=sd / exact_sd - 1.0,
                 ess_bulk=ess_bulk, ess_tail=ess_tail, num_draws=flat.shape[0], num_exact=num_exact)
