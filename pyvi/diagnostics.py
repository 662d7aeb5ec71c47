"""MCMC convergence diagnostics: rank-normalised split R-hat, bulk and tail effective sample size,
Monte Carlo standard errors of the mean and the sd, E-BFMI (the estimators: :mod:`pyvi.convergence`),
and a score of draws against an exact target (:mod:`pyvi.ground_truth`), where a sampler's user
looks for them.

Draws are shaped ``(num_chains, num_draws)`` or ``(num_chains, num_draws, dim)`` (ArviZ's
chain/draw convention). The estimators are those of Vehtari et al. (2021) exactly as ArviZ 0.23
computes them, in numpy alone.

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008.
"""

from __future__ import annotations

from pyvi.convergence import (
    e_bfmi,
    ess,
    ess_bulk,
    ess_mean,
    ess_tail,
    mcse_mean,
    mcse_sd,
    rank_normalize,
    split_rhat,
)
from pyvi.ground_truth import Score, score

__all__ = ["split_rhat", "ess_bulk", "ess_tail", "ess_mean", "ess", "mcse_mean", "mcse_sd", "e_bfmi",
           "rank_normalize", "score", "Score"]
