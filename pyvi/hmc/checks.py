"""What a run's draws say about the run: divergences, R-hat and bulk ESS against published thresholds.

:func:`pyvi.hmc.sample` warns (:class:`HMCWarning`) when a run fails one of them, and
``result.summary()`` lists them as notes:

- **divergences**: a transition whose energy error exceeds ``MAX_ENERGY_ERROR`` (1000, Stan's
  value) met curvature the step size cannot follow; the chains then miss or misrepresent that
  region, so any divergence after warm-up is reported (Betancourt 2017, Sec. 6.2).
- **R-hat > 1.01**: the rank-normalised split R-hat of Vehtari et al. (2021), who recommend
  1.01 (the older 1.1 misses real disagreement between chains).
- **bulk ESS < 100 per chain**: below this Vehtari et al. (2021) find R-hat and the ESS itself
  unreliable (they recommend 400 for 4 chains).

R-hat and ESS are checked only when every chain has at least 100 draws: with fewer, the estimates
are too noisy to judge the run by (the summary says so). The checks sort the draws once per
dimension (R-hat and ESS rank-normalise them); ``sample(..., warn=False)`` skips them.

To silence the warnings: ``warn=False`` for one run, or
``warnings.simplefilter("ignore", pyvi.hmc.HMCWarning)`` for all.

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434.
"""

from __future__ import annotations

import warnings

import numpy as np

from pyvi.hmc.settings import constants

__all__ = ["HMCWarning", "problems", "warn_about", "RHAT_THRESHOLD", "ESS_PER_CHAIN", "MIN_DRAWS_TO_CHECK"]

#: Split R-hat above this means the chains disagree (Vehtari et al. 2021).
RHAT_THRESHOLD = 1.01
#: Bulk ESS below this many per chain is too low to trust R-hat and the ESS (Vehtari et al. 2021).
ESS_PER_CHAIN = 100
#: Draws per chain below which R-hat and ESS are not checked (too noisy to judge by).
MIN_DRAWS_TO_CHECK = 100


class HMCWarning(UserWarning):
    """An HMC run that diverged or did not converge (see :mod:`pyvi.hmc.checks`)."""


def _dims(mask: np.ndarray) -> str:
    dims = np.flatnonzero(mask)
    shown = ", ".join(map(str, dims[:5])) + (", ..." if dims.size > 5 else "")
    return f"dimension{'s' if dims.size > 1 else ''} {shown}"


def _step_sizes(result) -> str:
    """How the step size came about, for the messages."""
    low, high = float(result.step_size.min()), float(result.step_size.max())
    adapted = f"{low:.3g}" if np.isclose(low, high, rtol=1e-3) else f"{low:.3g} to {high:.3g}"
    if result.settings.get("adapt_step_size") and result.settings.get("num_warmup", 0) > 0:
        return (f"step size adapted from {result.settings['step_size']:.3g} to {adapted} (with adaptation on, "
                "step_size is only the initial value)")
    return f"fixed step size {adapted}"


def problems(result, check_convergence: bool = True) -> list[str]:
    """The checks ``result`` (an :class:`~pyvi.hmc.HMCResult`) fails, one message each: its
    divergences, and (``check_convergence``) R-hat and bulk ESS."""
    messages = []
    num_chains, num_draws = result.samples.shape[:2]
    if result.num_divergent:
        chains = np.flatnonzero(result.divergent.any(axis=1))
        messages.append(
            f"{result.num_divergent} of {result.divergent.size} transitions after warm-up diverged (energy "
            f"error > {constants()['max_energy_error']:g}; in chain{'s' if chains.size > 1 else ''} "
            f"{', '.join(map(str, chains[:8]))}{', ...' if chains.size > 8 else ''}): the draws miss or misrepresent "
            f"the regions where the step size is too large; {_step_sizes(result)}. Use a smaller step_size with "
            "adapt_step_size=False, a higher target_accept, or reparameterise the target")
    if not check_convergence or num_draws < MIN_DRAWS_TO_CHECK:
        return messages
    rhat = result.rhat
    bad = ~(rhat <= RHAT_THRESHOLD)  # NaN (constant draws) counts as failing
    if bad.any():
        messages.append(
            f"split R-hat is {np.nanmax(rhat) if np.isfinite(rhat).any() else float('nan'):.3f} > {RHAT_THRESHOLD} in "
            f"{_dims(bad)}: the chains disagree (Vehtari et al. 2021 recommend R-hat < {RHAT_THRESHOLD}); run longer "
            "warm-up and sampling, or start the chains elsewhere")
    ess = result.ess_bulk
    low = ~(ess >= ESS_PER_CHAIN * num_chains)
    if low.any():
        messages.append(
            f"bulk ESS is {np.nanmin(ess) if np.isfinite(ess).any() else float('nan'):.0f} < {ESS_PER_CHAIN} per chain "
            f"({ESS_PER_CHAIN * num_chains} for {num_chains} chain{'s' if num_chains > 1 else ''}) in {_dims(low)}: "
            "too few effective draws for reliable R-hat, means and quantiles (Vehtari et al. 2021); draw more, or "
            f"mix better ({_step_sizes(result)}; with a fixed num_steps, random_steps=True avoids trajectories that "
            "return near their start)")
    return messages


def warn_about(result, check_convergence: bool = True, stacklevel: int = 2) -> None:
    """One :class:`HMCWarning` per failed check of ``result``."""
    for message in problems(result, check_convergence):
        warnings.warn(message, HMCWarning, stacklevel=stacklevel + 1)
