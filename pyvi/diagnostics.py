"""MCMC convergence diagnostics: rank-normalised split R-hat and bulk effective sample size.

Draws are shaped ``(num_chains, num_draws)`` or ``(num_chains, num_draws, dim)`` (ArviZ's
chain/draw convention).

References:
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008.
    Geyer, "Practical Markov chain Monte Carlo", Statistical Science 7 (1992) (initial monotone
    sequence estimator of the autocorrelation time).
    Moshier, "Methods and Programs for Mathematical Functions" (1989), the Cephes library (ndtri).
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


def ess(draws) -> np.ndarray:
    """Effective sample size per dimension of the (already transformed) draws, Geyer's initial
    monotone sequence over the split chains' combined autocorrelation (Stan's estimator)."""
    return _ess(_as_draws(draws))


def _ess(draws: np.ndarray) -> np.ndarray:
    """:func:`ess` of validated ``(chains, draws, dim)`` draws (at least 2 per chain: the halves of
    a split 4-draw chain)."""
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
    return _ess(rank_normalize(_split(draws)))
