"""MCMC convergence diagnostics, the estimators: rank-normalised split R-hat, bulk and tail effective
sample size, Monte Carlo standard errors of the mean and the sd, E-BFMI. Users import them from
:mod:`pyvi.diagnostics`, which adds a score of draws against an exact target; this module imports
nothing of pyvi's but the argument checks, so that the score's modules (pyvi.ground_truth,
pyvi.divergence) can use the estimators without a circular import.

Draws are shaped ``(num_chains, num_draws)`` or ``(num_chains, num_draws, dim)`` (ArviZ's
chain/draw convention). The estimators are those of Vehtari et al. (2021) exactly as ArviZ 0.23
computes them (``arviz.ess(method="bulk"|"tail")``, ``arviz.mcse(method="mean"|"sd")``,
``arviz.bfmi``), in numpy alone: the tests compare them with ArviZ's to 1e-6 relative.

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008.
    Geyer, "Practical Markov chain Monte Carlo", Statistical Science 7 (1992) (initial monotone
    sequence estimator of the autocorrelation time).
    Moshier, "Methods and Programs for Mathematical Functions" (1989), the Cephes library (ndtri).
    Betancourt, "Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo" (2016),
    arXiv:1604.00695 (E-BFMI).
"""

from __future__ import annotations

import numpy as np

from pyvi._validate import as_float_array

__all__ = ["split_rhat", "ess_bulk", "ess_tail", "ess_mean", "ess", "mcse_mean", "mcse_sd", "e_bfmi",
           "rank_normalize"]


def _as_draws(draws) -> np.ndarray:
    """(chains, draws, dim) float64, validated."""
    array = as_float_array(draws, "draws", ndim=(2, 3))
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[0] < 1:
        raise ValueError("draws must hold at least one chain, got 0 (shape (num_chains, num_draws[, dim]))")
    if array.shape[1] < 4:
        raise ValueError(f"draws must hold at least 4 draws per chain, got {array.shape[1]}")
    return array


def _split(draws: np.ndarray) -> np.ndarray:
    """Each chain cut into halves (the middle draw of an odd chain is dropped)."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)


# Cephes' ndtri (Moshier, Cephes Math Library; the coefficients and branches torch.special.ndtri and
# scipy.special.ndtri use), here in numpy: the rank normalisation needs one normal quantile, and
# importing torch for it cost the first ``HMCResult.rhat`` 1.7-3 s; scipy is not a runtime dependency.
# Rational approximations in y - 1/2 for the centre and in 1/sqrt(-2 log y) for the tails.
_NDTRI_P0 = (-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
             1.39312609387279679503E1, -1.23916583867381258016E0)
_NDTRI_Q0 = (1.0, 1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
             -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
             1.59056225126211695515E1, -1.18331621121330003142E0)
_NDTRI_P1 = (4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
             4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
             -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4)
_NDTRI_Q1 = (1.0, 1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
             1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
             -3.80806407691578277194E-2, -9.33259480895457427372E-4)
_NDTRI_P2 = (3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
             1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
             3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9)
_NDTRI_Q2 = (1.0, 6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
             2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
             2.89247864745380683936E-6, 6.79019408009981274425E-9)
_EXP_MINUS_2 = 0.13533528323661269189


def _polevl(x: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """Horner's rule, highest power first (Cephes' polevl, the same order of operations)."""
    result = np.zeros_like(x)
    for c in coefficients:
        result = result * x + c
    return result


def _ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile Phi^-1(p) elementwise: -inf at 0, inf at 1, NaN outside [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    out[p == 0.0] = -np.inf
    out[p == 1.0] = np.inf
    inside = (p > 0.0) & (p < 1.0)
    upper = inside & (p > 1.0 - _EXP_MINUS_2)  # reflect: the tail formulas want a small y
    y = np.where(upper, 1.0 - p, p)
    centre = inside & (y > _EXP_MINUS_2)
    yc = y[centre] - 0.5
    y2 = yc * yc
    out[centre] = (yc + yc * (y2 * _polevl(y2, _NDTRI_P0) / _polevl(y2, _NDTRI_Q0))) * 2.50662827463100050242E0
    tail = inside & ~centre
    x = np.sqrt(-2.0 * np.log(y[tail]))
    x0 = x - np.log(x) / x
    z = 1.0 / x
    x1 = np.where(x < 8.0, z * _polevl(z, _NDTRI_P1) / _polevl(z, _NDTRI_Q1),
                  z * _polevl(z, _NDTRI_P2) / _polevl(z, _NDTRI_Q2))
    out[tail] = np.where(upper[tail], x0 - x1, x1 - x0)
    return out


def rank_normalize(draws: np.ndarray) -> np.ndarray:
    """Blom-style normal scores of the pooled ranks, per dimension (Vehtari et al. eq. 14)."""
    chains, num, dim = draws.shape
    flat = draws.reshape(chains * num, dim)
    out = np.empty_like(flat)
    size = flat.shape[0]
    ranks = np.empty(size)
    for k in range(dim):
        # One sort per dimension; its order within ties does not matter, since tied draws
        # (rejections) share their average rank and so one score.
        order = np.argsort(flat[:, k])
        values = flat[order, k]
        first = np.empty(size, dtype=bool)
        first[:1] = True
        np.not_equal(values[1:], values[:-1], out=first[1:])
        start = np.flatnonzero(first)  # where each run of equal values begins, in sorted order
        counts = np.diff(start, append=size)
        ranks[order] = np.repeat(start + (counts + 1) / 2.0, counts)
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


def _ess_chains(x: np.ndarray) -> float:
    """ESS of one quantity's (chains, n) draws: Geyer's initial monotone sequence over the chains'
    combined autocorrelation (Stan's estimator, with ArviZ's boundary handling so the two agree).

    Constant draws (or a non-positive variance estimate) give NaN: there is nothing to estimate.
    """
    chains, num = x.shape
    acov = _autocovariance(x).mean(axis=0)  # (num,) averaged over chains
    mean_var = acov[0] * num / (num - 1.0)
    var_plus = mean_var * (num - 1.0) / num
    if chains > 1:
        var_plus += x.mean(axis=1).var(ddof=1)
    if not var_plus > 0 or np.ptp(x) < np.finfo(float).resolution:
        return float("nan")
    rho = 1.0 - (mean_var - acov) / var_plus
    rho[0] = 1.0
    # Geyer's initial positive sequence over the pair sums P_k = rho[2k] + rho[2k+1]: P_k (k >= 1)
    # is examined while P_{k-1} > 0 and 2k - 1 < num - 3. With K pairs examined, tau sums
    # P_0..P_{K-1} (made monotone) and the even lag of the last one examined (below).
    pairs = rho[: num - num % 2].reshape(-1, 2).sum(axis=1)
    num_eligible = max((num - 3) // 2, 0)
    num_pairs = 0  # K: how many pairs after P_0 were examined
    if pairs[0] > 0 and num_eligible > 0:
        stop = np.flatnonzero(~(pairs[1: num_eligible + 1] > 0))
        num_pairs = int(stop[0]) + 1 if stop.size else num_eligible
    monotone = np.minimum.accumulate(pairs[:num_pairs]) if num_pairs else pairs[:0]
    # The last examined pair's even lag adds a half-step when positive (ArviZ's "improve estimation"),
    # and also when the pair itself was accepted (sum >= 0), as ArviZ then stored it.
    last_even = rho[2 * num_pairs] if num_pairs else 1.0
    accepted = num_pairs > 0 and pairs[num_pairs] >= 0
    extra = last_even if (last_even > 0 or accepted) else 0.0
    tau = -1.0 + 2.0 * monotone.sum() + extra
    if np.isnan(tau):
        return float("nan")
    tau = max(tau, 1.0 / np.log10(chains * num))  # Stan's cap on antithetic chains
    return chains * num / tau


def ess(draws) -> np.ndarray:
    """Effective sample size per dimension of the draws as given (no splitting, no ranks; ArviZ's
    ``method="identity"``): the building block of the bulk, tail and mean ESS."""
    return _ess_per_dimension(_as_draws(draws))


def _ess_per_dimension(draws: np.ndarray) -> np.ndarray:
    """``_ess_chains`` of each dimension of validated (chains, n, dim) draws (split halves of a
    short chain may hold fewer than 4 draws)."""
    return np.array([_ess_chains(draws[:, :, k]) for k in range(draws.shape[-1])])


def ess_mean(draws) -> np.ndarray:
    """ESS of the mean per dimension: the split chains without rank normalisation (ArviZ's
    ``method="mean"``); the denominator of the Monte Carlo standard error of the mean."""
    return _ess_per_dimension(_split(_as_draws(draws)))


def ess_bulk(draws) -> np.ndarray:
    """Bulk effective sample size per dimension: ESS of the rank-normalised split chains.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> 3500 < float(ess_bulk(rng.standard_normal((4, 1000)))[0]) < 4500
        True
    """
    draws = _as_draws(draws)
    return _ess_per_dimension(rank_normalize(_split(draws)))


def _type7_quantile(flat: np.ndarray, prob: float) -> np.ndarray:
    """The type-7 quantile of each column, as scipy's ``mquantiles(alphap=1, betap=1)`` (ArviZ's)
    rounds it: (1 - g) x_(k) + g x_(k+1). numpy's lerp rounds differently, and on tied draws (HMC
    rejections repeat a draw) the last bit decides whether the tie counts as below the quantile."""
    ordered = np.sort(flat, axis=0)
    size = ordered.shape[0]
    if size == 1:
        return ordered[0]
    aleph = size * prob + (1.0 - prob)
    k = int(np.floor(np.clip(aleph, 1, size - 1)))
    gamma = float(np.clip(aleph - k, 0.0, 1.0))
    return (1.0 - gamma) * ordered[k - 1] + gamma * ordered[k]


def _quantile_indicator_ess(draws: np.ndarray, prob: float) -> np.ndarray:
    """ESS of the indicator I(x <= q_prob) over the split chains, per dimension (Vehtari et al.
    section 4.3). The quantile is the pooled draws' type-7 quantile."""
    quantile = _type7_quantile(draws.reshape(-1, draws.shape[-1]), prob)
    indicator = _split((draws <= quantile).astype(np.float64))
    result = _ess_per_dimension(indicator)
    # A constant indicator (ties: every draw at or below the quantile) carries no autocorrelation to
    # estimate; ArviZ counts it as fully efficient, and so do we, so the minimum stays the other tail's.
    constant = np.ptp(indicator, axis=(0, 1)) == 0
    result[constant] = indicator.shape[0] * indicator.shape[1]
    return result


def ess_tail(draws, prob: float = 0.05) -> np.ndarray:
    """Tail effective sample size per dimension: the smaller ESS of the indicators of the ``prob`` and
    ``1 - prob`` quantiles (Vehtari et al. 2021, section 4.3; ArviZ's ``method="tail"``). Small when
    the chains explore the tails poorly, which the bulk ESS does not see.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> 3000 < float(ess_tail(rng.standard_normal((4, 1000)))[0]) < 5000
        True
    """
    draws = _as_draws(draws)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie in (0, 1), got {prob}")
    return np.minimum(_quantile_indicator_ess(draws, prob), _quantile_indicator_ess(draws, 1.0 - prob))


def mcse_mean(draws) -> np.ndarray:
    """Monte Carlo standard error of the posterior mean per dimension: sd / sqrt(ESS of the mean)
    (Vehtari et al. 2021, section 4.4; ArviZ's ``mcse(method="mean")``).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> 0.013 < float(mcse_mean(rng.standard_normal((4, 1000)))[0]) < 0.018
        True
    """
    draws = _as_draws(draws)
    flat = draws.reshape(-1, draws.shape[-1])
    return flat.std(axis=0, ddof=1) / np.sqrt(ess_mean(draws))


def mcse_sd(draws) -> np.ndarray:
    """Monte Carlo standard error of the posterior sd per dimension, by the delta method on the
    variance: Var(sd) ~ Var(s^2) / (4 s^2), with Var(s^2) from the ESS of the squared deviations
    (Vehtari et al. 2021; ArviZ's ``mcse(method="sd")``)."""
    draws = _as_draws(draws)
    flat = draws.reshape(-1, draws.shape[-1])
    squared = (draws - flat.mean(axis=0)) ** 2
    variance = squared.reshape(flat.shape).mean(axis=0)
    var_of_var = ((squared**2).reshape(flat.shape).mean(axis=0) - variance**2) / _ess_per_dimension(_split(squared))
    return np.sqrt(var_of_var / variance / 4.0)


def e_bfmi(energy) -> np.ndarray:
    """Energy Bayesian fraction of missing information per chain (Betancourt 2016, eq. 15; ArviZ's
    ``bfmi``): E[(E_n - E_{n-1})^2] / Var(E), the Hamiltonian energy's draw-to-draw change against
    its marginal spread. Below 0.3 the momentum resampling explores the energy levels poorly (heavy
    tails, a bad metric).

    Args:
        energy: ``(num_chains, num_draws)`` Hamiltonian (potential + kinetic) at each draw.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(np.all(e_bfmi(rng.standard_normal((2, 1000))) > 1.5))  # independent energies: ~2
        True
    """
    energy = as_float_array(energy, "energy", ndim=2)
    if energy.shape[1] < 2:
        raise ValueError(f"energy must hold at least 2 draws per chain, got {energy.shape[1]}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.square(np.diff(energy, axis=1)).mean(axis=1) / energy.var(axis=1, ddof=1)
