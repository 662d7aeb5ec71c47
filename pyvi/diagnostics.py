"""MCMC convergence diagnostics: rank-normalised split R-hat and bulk effective sample size.

Draws are shaped ``(num_chains, num_draws)`` or ``(num_chains, num_draws, dim)`` (ArviZ's
chain/draw convention).

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008.
    Geyer, "Practical Markov chain Monte Carlo", Statistical Science 7 (1992) (initial monotone
    sequence estimator of the autocorrelation time).
"""

from __future__ import annotations

import numpy as np

from pyvi._validate import as_float_array

__all__ = ["split_rhat", "ess_bulk", "ess", "rank_normalize"]


def _as_draws(draws) -> np.ndarray:
    """(chains, draws, dim) float64, validated."""
    array = as_float_array(draws, "draws", ndim=(2, 3))
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[1] < 4:
        raise ValueError(f"draws must hold at least 4 draws per chain, got {array.shape[1]}")
    return array


def _split(draws: np.ndarray) -> np.ndarray:
    """Each chain cut into halves (the middle draw of an odd chain is dropped)."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)


def _ndtri(p: np.ndarray) -> np.ndarray:
    import torch

    return torch.special.ndtri(torch.from_numpy(p)).numpy()


def rank_normalize(draws: np.ndarray) -> np.ndarray:
    """Blom-style normal scores of the pooled ranks, per dimension (Vehtari et al. eq. 14)."""
    chains, num, dim = draws.shape
    flat = draws.reshape(chains * num, dim)
    out = np.empty_like(flat)
    size = flat.shape[0]
    for k in range(dim):
        order = np.argsort(flat[:, k], kind="stable")
        ranks = np.empty(size)
        ranks[order] = np.arange(1, size + 1)
        # Average ranks over ties so that repeated draws (rejections) share one score.
        values = flat[order, k]
        _, start, counts = np.unique(values, return_index=True, return_counts=True)
        tied = np.repeat(start + (counts + 1) / 2.0, counts)
        ranks[order] = tied
        out[:, k] = _ndtri((ranks - 0.375) / (size + 0.25))
    return out.reshape(chains, num, dim)


def _rhat(draws: np.ndarray) -> np.ndarray:
    chains, num, _ = draws.shape
    chain_mean = draws.mean(axis=1)
    chain_var = draws.var(axis=1, ddof=1)
    between = num * chain_mean.var(axis=0, ddof=1)
    within = chain_var.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_plus = (num - 1) / num * within + between / num
        return np.sqrt(var_plus / within)


def split_rhat(draws) -> np.ndarray:
    """Rank-normalised split R-hat per dimension: max of the bulk and folded (tail) versions.

    Values near 1 (below 1.01) indicate the chains agree. Constant draws give NaN.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> float(split_rhat(rng.standard_normal((4, 1000)))[0]) < 1.01
        True
    """
    draws = _as_draws(draws)
    split = _split(draws)
    bulk = _rhat(rank_normalize(split))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    tail = _rhat(rank_normalize(folded))
    return np.maximum(bulk, tail)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each row of x (chains, n) by FFT, biased (divided by n)."""
    n = x.shape[-1]
    centred = x - x.mean(axis=-1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    return np.fft.irfft(spectrum * np.conj(spectrum), size)[..., :n] / n


def ess(draws) -> np.ndarray:
    """Effective sample size per dimension of the (already transformed) draws, Geyer's initial
    monotone sequence over the split chains' combined autocorrelation (Stan's estimator)."""
    draws = _as_draws(draws)
    chains, num, dim = draws.shape
    out = np.empty(dim)
    for k in range(dim):
        x = draws[:, :, k]
        acov = _autocovariance(x)  # (chains, num)
        chain_var = acov[:, 0] * num / (num - 1.0)
        mean_var = chain_var.mean()
        var_plus = mean_var * (num - 1.0) / num
        if chains > 1:
            var_plus += x.mean(axis=1).var(ddof=1)
        if not var_plus > 0:
            out[k] = np.nan
            continue
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
        rho[0] = 1.0
        # Sum pairs rho[2t] + rho[2t+1] while positive, made monotone (Geyer 1992).
        pair_sums = rho[: num - num % 2].reshape(-1, 2).sum(axis=1)
        positive = np.flatnonzero(pair_sums <= 0)
        pair_sums = pair_sums[: positive[0] if positive.size else pair_sums.size]
        pair_sums = np.minimum.accumulate(pair_sums)
        tau = -1.0 + 2.0 * pair_sums.sum()
        tau = max(tau, 1.0 / np.log10(chains * num))  # Stan's cap on antithetic chains
        out[k] = chains * num / tau
    return out


def ess_bulk(draws) -> np.ndarray:
    """Bulk effective sample size per dimension: ESS of the rank-normalised split chains.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> 3500 < float(ess_bulk(rng.standard_normal((4, 1000)))[0]) < 4500
        True
    """
    draws = _as_draws(draws)
    return ess(rank_normalize(_split(draws)))
