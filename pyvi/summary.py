"""A per-dimension summary of MCMC draws with ArviZ's columns: mean, sd, HDI, MCSE of the mean and
the sd, bulk and tail ESS, R-hat.

``summarize(draws)`` gives the columns as plain lists (JSON-ready); :func:`format_table` prints them
as ArviZ's ``summary`` does. The numbers equal ``arviz.summary(draws)``'s (the tests compare them to
1e-6), computed with numpy alone (:mod:`pyvi.diagnostics`). One difference: R-hat with one chain
is computed on its two halves (ArviZ reports NaN).

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021), arXiv:1903.08008.
    Hyndman, "Computing and graphing highest density regions", The American Statistician 50 (1996)
    (the shortest interval holding a fraction of the draws).
"""

from __future__ import annotations

import numpy as np

from pyvi import convergence
from pyvi._validate import as_float_array

__all__ = ["summarize", "hdi", "format_table", "column_names", "DEFAULT_HDI_PROB"]

#: ArviZ's default interval probability (``rcParams["stats.ci_prob"]``).
DEFAULT_HDI_PROB = 0.94


def hdi(draws, prob: float = DEFAULT_HDI_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval per dimension: the shortest interval between two sorted draws that
    holds floor(prob n) + 1 of the n pooled draws (ArviZ's unimodal ``hdi``).

    Args:
        draws: ``(num_chains, num_draws[, dim])`` or ``(n, dim)`` via a leading chain axis.
        prob: the interval's probability, in (0, 1].

    Returns:
        ``(lower, upper)``, each ``(dim,)``.

    Example:
        >>> lower, upper = hdi(np.random.default_rng(0).standard_normal((4, 2500)), 0.95)
        >>> bool(-2.1 < lower[0] < -1.8 and 1.8 < upper[0] < 2.1)
        True
    """
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"prob must lie in (0, 1], got {prob}")
    array = as_float_array(draws, "draws", ndim=(2, 3))
    flat = np.sort(array.reshape(-1, array.shape[-1] if array.ndim == 3 else 1), axis=0)
    size = flat.shape[0]
    inside = int(np.floor(prob * size))
    if inside >= size:
        raise ValueError(f"draws hold too few values ({size}) for a {prob:g} interval")
    start = np.argmin(flat[inside:] - flat[: size - inside], axis=0)
    columns = np.arange(flat.shape[1])
    return flat[start, columns], flat[start + inside, columns]


def column_names(hdi_prob: float = DEFAULT_HDI_PROB) -> list[str]:
    """ArviZ's column names, e.g. ``hdi_3%`` and ``hdi_97%`` for 0.94."""
    alpha = 1.0 - hdi_prob
    return ["mean", "sd", f"hdi_{100 * alpha / 2:g}%", f"hdi_{100 * (1 - alpha / 2):g}%", "mcse_mean", "mcse_sd",
            "ess_bulk", "ess_tail", "r_hat"]


def summarize(draws, hdi_prob: float = DEFAULT_HDI_PROB) -> dict[str, list[float]]:
    """ArviZ's summary columns per dimension, as plain lists (:func:`column_names` gives the keys).

    Diagnostics that need 4 draws per chain are NaN with fewer.

    Example:
        >>> columns = summarize(np.random.default_rng(0).standard_normal((4, 1000, 2)))
        >>> list(columns)[:4], len(columns["ess_bulk"])
        (['mean', 'sd', 'hdi_3%', 'hdi_97%'], 2)
    """
    array = as_float_array(draws, "draws", ndim=(2, 3))
    if array.ndim == 2:
        array = array[..., None]
    flat = array.reshape(-1, array.shape[-1])
    nan = np.full(flat.shape[1], np.nan)
    lower, upper = hdi(array, hdi_prob) if flat.shape[0] > 0 else (nan, nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = flat.std(axis=0, ddof=1) if flat.shape[0] > 1 else nan
    if array.shape[1] >= 4:
        values = [convergence.mcse_mean(array), convergence.mcse_sd(array), convergence.ess_bulk(array),
                  convergence.ess_tail(array), convergence.split_rhat(array)]
    else:
        values = [nan] * 5
    mean = flat.mean(axis=0) if flat.shape[0] else nan
    return {name: np.asarray(column, dtype=np.float64).tolist()
            for name, column in zip(column_names(hdi_prob), [mean, sd, lower, upper, *values])}


def format_table(columns: dict[str, list[float]], labels: list[str] | None = None) -> str:
    """The columns of :func:`summarize` as a text table, one row per dimension (ArviZ's layout, with
    4 significant digits for the moments, interval and MCSE whatever their scale, ESS as integers
    and R-hat to 3 decimals, enough to read it against 1.01)."""
    names = list(columns)
    rows = len(columns[names[0]])
    labels = labels if labels is not None else [f"x[{k}]" for k in range(rows)]
    width = max(len(label) for label in labels) if labels else 4

    def cell(name: str, value: float) -> str:
        if not np.isfinite(value):
            return "nan"
        if name.startswith("ess"):
            return f"{value:.0f}"
        return f"{value:.3f}" if name == "r_hat" else f"{value:.4g}"

    widths = {name: max(len(name), *(len(cell(name, v)) for v in columns[name])) if rows else len(name)
              for name in names}
    lines = [" " * width + "".join(f"  {name:>{widths[name]}}" for name in names)]
    for k in range(rows):
        lines.append(f"{labels[k]:<{width}}" + "".join(f"  {cell(name, columns[name][k]):>{widths[name]}}"
                                                        for name in names))
    return "\n".join(lines)
