"""KL divergence: the k-nearest-neighbour estimator of Wang, Kulkarni & Verdu, and Gaussians' closed form.

:func:`knn_kl` estimates KL(P || Q) in nats from samples x ~ P (n x d) and y ~ Q (m x d) (eq. 5 of
the paper; the ITE toolbox's ``DKL_kNN_k`` estimator, which the homework uses)::

    D = d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),

where rho_k(i) is the distance from x_i to its k-th nearest neighbour among the other points of x
and nu_k(i) to its k-th nearest neighbour in y. :func:`knn_kl_estimate` returns the same estimate
with its per-point terms and a standard error (:class:`KLEstimate`).

Duplicates. HMC repeats a draw on every rejection, so repeated points are normal input, and with
them rho_k(i) can be 0 (an infinite estimate). pyvi's rule, "leave all copies out", is the same in
every backend. Eq. 5's n - 1 already computes x_i's term with x_i itself left out of x; pyvi leaves
out every copy of it, from x and from y::

    z_i = #{j != i : x_j == x_i},  w_i = #{j : y_j == x_i},
    rho_i = k-th nearest-neighbour distance from x_i in x without the z_i + 1 copies of x_i,
    nu_i  = k-th nearest-neighbour distance from x_i in y without the w_i copies of x_i,
    D = 1/n sum_i [d log(nu_i / rho_i) + log((m - w_i) / (n - 1 - z_i))].

So rho_i and nu_i are the k-th smallest *positive* distances (other points count with their
multiplicity), and each term keeps eq. 5's form with the sample sizes it was computed from. Without
duplicates z_i = w_i = 0 and this is eq. 5 exactly. Other rules were tried on draws repeated as by
an HMC chain (iid N(0, I) draws repeated 1-3 times against fresh N(0, I) draws, true KL 0, n = m =
2e4, 2-D): this one gave -0.02 to +0.01 nats for k = 5, while counting the copies as neighbours
(Wang et al.'s eq. 17 with k_i = k + z_i) gave +0.23. For k = 1 every rule is biased on such data
(here -0.7): the nearest distinct draw stands for one HMC proposal, not one of n independent draws;
hence the default k = 5. Copies cost nothing: every backend handles the copies of one point as one
point with a multiplicity, so the work is O(n log n) however many there are (a stuck chain of 1e5
identical draws reaches its ValueError in milliseconds).

MCMC output. ``x`` (and ``y``) may be chains, ``(num_chains, num_draws, d)`` as
``HMCResult.samples``: the draws of all chains are the sample (flattened, chain by chain). Draws of
one chain are dependent, which changes two things. The standard error of :class:`KLEstimate` is
then Stan's Monte Carlo standard error of the mean of the terms along the chains (their standard
deviation over the square root of their effective sample size), not the iid one. And the estimate
is biased upwards when the chains move little per draw: x_i's k-th neighbour is then a neighbouring
draw of its own chain, so rho_i measures the chain's step instead of the density (HMC draws on a
31-D Gaussian with trajectory length 1 scored 1.36 nats against a second run, 1.29 against exact
draws, at k = 1; 0.34 at k = 5). :class:`KLEstimate` reports the fraction of draws whose nearest
different draw before or after it in its chain lies within rho_i (about 2k / n for independent
draws; 0.4-1 in those runs, under 0.03 for well-mixing ones), and both functions warn
(:class:`AutocorrelationWarning`) when it exceeds 0.1 + 2k / (n - 1): thin the chains
(``x[:, ::step]``) until it does not. A 2-D ``x`` is taken as independent draws.

Exact distances. Points are compared after all coordinates are scaled by one power of two (so that
the largest magnitude lies in [0.5, 1)); the scaling is exact and the estimate is scale free, it
only keeps squared distances from overflowing. When the input spans more than 2^459 in magnitude
(a nonzero coordinate below 2^-459 of the largest, e.g. 1e-300 next to 1e300), that scaling and the
squares would round small differences away, and distinct points would count as copies; every
backend then compares the points as they are by the logarithm of their distance,
log s + log(sum_j (v_j / s)^2) / 2 with s = max_j |v_j| (``csrc/core/robust_search.hpp``): no square
of anything but a ratio in [-1, 1], so nothing under- or overflows, and the estimate stays exact
to rounding (about 1e-13 relative in each distance), only slower. If some x_i has fewer than k points of x, or of y,
that differ from it (all points of x identical, say), rho_i or nu_i does not exist and a ValueError
says so. For finite input the result is therefore always a finite number or a ValueError.

Backends (all exact, so they agree up to float rounding; on the same input they find the same
neighbour distances, bit for bit):

- ``"cpp"``: ``pyvi._core``; a k-d tree written for this job (leaves contiguous in tree order,
  compile-time paths for d = 1, 2, 3, queries in tree order, GIL released, ``num_threads`` threads;
  in 2-D with k <= 8 the points of one leaf search together, with SSE2 leaf scans).
- ``"numba"``: ``pyvi._numba.knn``; its own array-based k-d tree, queries in a ``prange``.
- ``"scipy"``: ``scipy.spatial.cKDTree`` (the baseline, as ITE does it; ``pyvi._knn_scipy``).
  scipy is a development dependency only.

Threads. ``num_threads=None`` (the default) uses every core this process may run on
(``os.sched_getaffinity``), as ``pyvi.hmc.sample`` does; on a machine shared with other work, pass
a count. More threads than those cores run as that many. Results never depend on it.

References:
    Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
    k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.
    Szabo, "Information theoretical estimators toolbox", JMLR 15 (2014) (ITE).
    Perez-Cruz, "Kullback-Leibler divergence estimation of continuous distributions", ISIT 2008.
    Vehtari, Gelman, Simpson, Carpenter & Buerkner, "Rank-normalization, folding, and localization:
    an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
    arXiv:1903.08008 (the Monte Carlo standard error of a mean).
    Theiler, "Spurious dimension from correlation integrals of short time-series", Phys. Rev. A 34
    (1986) (temporally close points as spurious nearest neighbours).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, choice, count

__all__ = ["knn_kl", "knn_kl_estimate", "KLEstimate", "AutocorrelationWarning", "gaussian_kl", "BACKENDS"]

BACKENDS = ("cpp", "numba", "scipy")
#: Points per leaf (measured best in 2-D at n = 1e5 and 1e6: the C++ search is branch free inside a
#: leaf, and in 2-D a leaf's points search together).
_LEAF_SIZE = {"cpp": 32, "numba": 12}
_MAX_THREADS = 2**31 - 1  # a C int


class AutocorrelationWarning(UserWarning):
    """The chains given as x move so little per draw that their own neighbouring draws set rho_i
    (see :mod:`pyvi.divergence`): the estimate is biased upwards."""


@dataclass(frozen=True)
class KLEstimate:
    """A k-NN KL estimate with its per-point terms (:func:`knn_kl_estimate`).

    Attributes:
        value: the estimate of KL(P || Q) in nats.
        standard_error: for independent draws (a 2-D x), std(terms) / sqrt(n), the naive standard
            error of the mean of the terms; for chains (a 3-D x), std(terms) / sqrt(ESS), with ESS
            the effective sample size of the terms along the chains (Stan's estimator,
            :func:`pyvi.diagnostics.ess`; chains of fewer than 4 draws: the naive one). Neither
            counts the weak dependence between terms through shared neighbours, nor the bias of
            autocorrelated chains (``chain_neighbour_fraction``).
        terms: ``(n,)`` per-point terms d log(nu_i / rho_i) + log((m - w_i) / m) - log((n - 1 - z_i) / (n - 1)),
            in the order of the flattened x; value equals ``terms.mean() + log(m / (n - 1))``.
        rho: ``(n,)`` k-th smallest positive distance from x_i to the other points of x (+inf where
            it exceeds the largest double, as between points near +-1.7e308; the terms stay exact).
        nu: ``(n,)`` k-th smallest positive distance from x_i to the points of y.
        copies_x: ``(n,)`` z_i, the other points of x equal to x_i.
        copies_y: ``(n,)`` w_i, the points of y equal to x_i.
        k: the k asked for.
        backend: which backend computed it.
        num_chains: chains in x (None: a 2-D x, independent draws).
        effective_sample_size: the ESS of the terms (n for a 2-D x).
        chain_neighbour_fraction: for chains, the fraction of draws whose nearest different draw
            before or after it in its chain lies within rho_i (about 2k / n for independent draws;
            large values mean a biased estimate); None for a 2-D x.
    """

    value: float
    standard_error: float
    terms: np.ndarray
    rho: np.ndarray
    nu: np.ndarray
    copies_x: np.ndarray
    copies_y: np.ndarray
    k: int
    backend: str
    num_chains: int | None = None
    effective_sample_size: float = math.nan
    chain_neighbour_fraction: float | None = None

    def __float__(self) -> float:
        return self.value


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


def _points(value, name: str, count_name: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """``value`` as (points, d) float64, and (chains, draws) when it was a 3-D chain array."""
    array = as_float_array(value, name, finite=False)
    if array.ndim == 3:
        return array.reshape(-1, array.shape[2]), array.shape[:2]
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array ({count_name} points, d dimensions) or a 3-D array of "
                         f"chains (num_chains, num_draws, d), got shape {array.shape}")
    return array, None


def _check(x, y, k, finite: bool = True):
    """The checks of every backend, in the documented order (``finite=False``: all but the last,
    finiteness, which pyvi._core checks itself in a parallel pass, with the same messages).
    Returns x and y as contiguous 2-D arrays, k, and x's (chains, draws) or None."""
    x, chains = _points(x, "x", "n")
    y, _ = _points(y, "y", "m")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension (columns), got {x.shape[1]} and {y.shape[1]}")
    if x.shape[1] < 1:
        raise ValueError("x and y must have at least one column")
    n, m = x.shape[0], y.shape[0]
    if n < 2:
        raise ValueError(f"x must hold at least 2 points, got {n}")
    if m < 1:
        raise ValueError(f"y must hold at least 1 point, got {m}")
    k = count(k, "k", minimum=1)
    if k >= n:
        raise ValueError(f"k must be < len(x) = {n}, got {k}")
    if k > m:
        raise ValueError(f"k must be <= len(y) = {m}, got {k}")
    if finite and not np.isfinite(x).all():
        raise ValueError("x must contain only finite values")
    if finite and not np.isfinite(y).all():
        raise ValueError("y must contain only finite values")
    return np.ascontiguousarray(x), np.ascontiguousarray(y), k, chains


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _thread_count(num_threads, workers) -> int:
    """``num_threads`` (or its deprecated name ``workers``) as a count of threads to run."""
    name = "num_threads"
    if workers is not _UNSET:
        if num_threads is not None:
            raise TypeError("knn_kl: pass num_threads only (workers is its deprecated name)")
        warnings.warn("knn_kl's `workers` is deprecated: pass num_threads (the same meaning)", DeprecationWarning,
                      stacklevel=3)
        num_threads, name = workers, "workers"
    if num_threads is None:
        return _usable_cores()
    value = count(num_threads, name, minimum=1)
    if value > _MAX_THREADS:
        raise ValueError(f"{name} must be <= {_MAX_THREADS} (2**31 - 1), got {value}")
    return min(value, _usable_cores())


#: Scaled coordinates are exact for the squared search when every nonzero one is >= 2^-459 in
#: magnitude (csrc/core/robust_search.hpp's kFastRangeBits, which says why).
_FAST_RANGE_BITS = 459


def knn_scaling(largest: float, smallest: float) -> tuple[int, bool]:
    """(exponent, robust) for points whose largest magnitude is ``largest`` and smallest nonzero one
    ``smallest`` (inf: none): the largest into [0.5, 1) by 2^-exponent for squared distances when
    every nonzero value then stays >= 2^-459, else (0, True), log distances. The same rule as
    ``pyvi._core.knn_scaling`` (csrc/core/robust_search.hpp's choose_scaling), in Python so that the
    numba and scipy backends do not need pyvi._core."""
    exponent = math.frexp(largest)[1] if largest > 0.0 else 0  # largest in [2^(exponent - 1), 2^exponent)
    if math.ldexp(smallest, -exponent) < math.ldexp(1.0, -_FAST_RANGE_BITS):
        return 0, True
    return exponent, False


def _scaling(x: np.ndarray, y: np.ndarray, backend: str) -> tuple[int, bool]:
    """The exponent e that the points are scaled by (2^-e) for squared distances, or (0, True) for
    log distances (knn_scaling)."""
    return knn_scaling(*_magnitudes(x, y, backend))


def _duplicate_error(rho2: np.ndarray, nu2: np.ndarray, k: int) -> None:
    bad = np.flatnonzero(np.isinf(rho2))
    if bad.size:
        raise ValueError(f"x: point {bad[0]} has fewer than k = {k} other points of x distinct from it "
                         "(too many duplicates for this k)")
    bad = np.flatnonzero(np.isinf(nu2))
    if bad.size:
        raise ValueError(f"y: fewer than k = {k} points of y differ from x[{bad[0]}] (too many duplicates for this k)")


def _scipy(xs: np.ndarray, ys: np.ndarray, k: int, workers: int, robust: bool):
    from pyvi._knn_scipy import distances

    rho2, nu2, copies_x, copies_y = distances(xs, ys, k, workers, robust)
    if np.isinf(rho2).any() or np.isinf(nu2).any():
        return rho2, nu2, copies_x, copies_y, None, None
    n, m = len(xs), len(ys)
    with np.errstate(all="raise"):
        if robust:  # log distances
            terms = xs.shape[1] * (nu2 - rho2)
        else:
            terms = 0.5 * xs.shape[1] * (np.log(nu2) - np.log(rho2))
        terms += np.log1p(-copies_y / m) - np.log1p(-copies_x / (n - 1))
    return rho2, nu2, copies_x, copies_y, terms, math.fsum(terms)


def _numba(xs: np.ndarray, ys: np.ndarray, k: int, threads: int, robust: bool):
    from pyvi._numba.knn import knn_kl as numba_knn_kl
    from pyvi._numba.threads import num_threads

    with num_threads(threads):
        return numba_knn_kl(xs, ys, k, _LEAF_SIZE["numba"], robust)


def _magnitudes(x: np.ndarray, y: np.ndarray, backend: str) -> tuple[float, float]:
    """The largest and the smallest nonzero |value| of x and y (inf: none)."""
    if backend == "numba":
        from pyvi._numba.knn import magnitudes

        largest, smallest = magnitudes(x, y)
        return float(largest), float(smallest)
    magnitudes = np.abs(np.concatenate([x.ravel(), y.ravel()]))
    positive = magnitudes[magnitudes > 0.0]
    return float(magnitudes.max(initial=0.0)), float(positive.min(initial=np.inf))


def _exp(value: float) -> float:
    """libm's exp (math.exp), +inf past the largest double as in C (math.exp raises there)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _estimate(x, y, k, backend: str, threads: int):
    """Every backend's outputs: (value, terms, rho, nu, copies_x, copies_y, x, chains)."""
    x, y, k, chains = _check(x, y, k, finite=backend != "cpp")
    n = x.shape[0]
    m = y.shape[0]
    if backend == "cpp":
        out = require("cpp").knn_kl(x, y, k, threads, _LEAF_SIZE["cpp"])
        value, terms, rho, nu = out["value"], out["terms"], out["rho"], out["nu"]
        copies_x, copies_y = out["copies_x"], out["copies_y"]
    else:
        if backend == "numba":
            require("numba")
        exponent, robust = _scaling(x, y, backend)
        xs, ys = np.ldexp(x, -exponent), np.ldexp(y, -exponent)
        if backend == "numba":
            rho2, nu2, copies_x, copies_y, terms, total = _numba(xs, ys, k, threads, robust)
        else:
            rho2, nu2, copies_x, copies_y, terms, total = _scipy(xs, ys, k, threads, robust)
        _duplicate_error(rho2, nu2, k)
        value = total / n + math.log(m / (n - 1))
        if robust:  # log distances: their exp by libm, as pyvi._core computes it (numpy's may differ)
            rho, nu = (np.fromiter(map(_exp, a), np.float64, len(a)) for a in (rho2, nu2))
        else:
            with np.errstate(over="ignore"):  # a distance beyond the largest double: inf, as in pyvi._core
                rho, nu = np.ldexp(np.sqrt(rho2), exponent), np.ldexp(np.sqrt(nu2), exponent)
    return float(value), terms, rho, nu, copies_x, copies_y, x, chains


def _chain_neighbour_fraction(x: np.ndarray, chains: tuple[int, int], rho: np.ndarray) -> float:
    """Fraction of the draws whose nearest different draw before or after it in its own chain lies
    within rho_i (runs of copies, HMC's rejections, skipped)."""
    num_chains, draws = chains
    n = x.shape[0]
    new = np.ones(n, bool)  # draw i starts a run of copies (or a chain)
    new[1:] = (x[1:] != x[:-1]).any(axis=1)
    new[::draws] = True
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    ends = np.append(starts[1:], n)
    near = np.zeros(n, bool)
    for other in (starts[run] - 1, ends[run]):  # the run's neighbours: the draw before, the one after
        # Only within the draw's chain: not before its chain's first draw, not past its last.
        ok = (other >= 0) & (other < n) & (other // draws == np.arange(n) // draws)
        rows = np.flatnonzero(ok)
        v = x[other[rows]] - x[rows]
        s = np.abs(v).max(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            distance = s * np.sqrt(((v / s[:, None]) ** 2).sum(axis=1))  # no square under- or overflows
        near[rows] |= distance <= rho[rows]
    return float(near.mean())


def _chain_checks(terms: np.ndarray | None, rho: np.ndarray, x: np.ndarray, chains: tuple[int, int], k: int,
                  stacklevel: int):
    """(effective sample size of the terms (nan without terms), chain neighbour fraction), warning
    when that fraction says the estimate is biased (module docstring); ``stacklevel``: what a warning
    raised in the caller would pass to point at the user's call."""
    num_chains, draws = chains
    n = x.shape[0]
    fraction = _chain_neighbour_fraction(x, chains, rho)
    if fraction > 0.1 + 2 * k / (n - 1):
        warnings.warn(
            f"knn_kl: x's chains are autocorrelated: for {fraction:.0%} of the draws the nearest different draw "
            f"before or after it in its chain lies within rho_i (about {2 * k / (n - 1):.1%} for independent "
            "draws), so rho_i measures the chains' steps and the estimate is biased upwards; thin the chains "
            "(x[:, ::step]) until it is near that", AutocorrelationWarning, stacklevel=stacklevel + 1)
    ess = math.nan
    if draws >= 4 and terms is not None:
        from pyvi.convergence import ess as effective_sample_size

        ess = float(effective_sample_size(terms.reshape(num_chains, draws))[0])
    return ess, fraction


def knn_kl_estimate(x, y, k: int = 5, *, backend: str = "cpp", num_threads: int | None = None) -> KLEstimate:
    """k-nearest-neighbour estimate of KL(P || Q) in nats from x ~ P and y ~ Q, with its per-point
    terms and standard error.

    The estimate of :func:`knn_kl` (the same arguments, the same value) as a :class:`KLEstimate`.
    For chains (a 3-D x) its standard error counts their autocorrelation (Stan's Monte Carlo
    standard error) and ``chain_neighbour_fraction`` says whether their steps bias the estimate.

    Raises:
        ValueError, TypeError: as :func:`knn_kl`.

    References:
        Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
        k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.
        Vehtari et al., Bayesian Analysis 16 (2021), arXiv:1903.08008 (the standard error of chains).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(size=(20000, 2)), rng.normal(1.0, 1.0, size=(20000, 2))
        >>> estimate = knn_kl_estimate(x, y)
        >>> round(estimate.value, 1), bool(estimate.standard_error < 0.02)
        (1.0, True)
    """
    backend = choice(backend, "backend", BACKENDS)
    threads = _thread_count(num_threads, _UNSET)
    return _knn_kl_estimate(x, y, k, backend, threads, stacklevel=3)


def _knn_kl_estimate(x, y, k, backend: str, threads: int, stacklevel: int) -> KLEstimate:
    value, terms, rho, nu, copies_x, copies_y, x, chains = _estimate(x, y, k, backend, threads)
    n = x.shape[0]
    k = int(k)
    spread = float(np.std(terms, ddof=1))
    ess, fraction = (float(n), None) if chains is None else _chain_checks(terms, rho, x, chains, k, stacklevel)
    if not ess > 0.0:  # fewer than 4 draws per chain, or terms that do not vary
        ess = float(n)
    return KLEstimate(value=value, standard_error=spread / math.sqrt(ess), terms=terms, rho=rho, nu=nu,
                      copies_x=np.asarray(copies_x, np.int64), copies_y=np.asarray(copies_y, np.int64), k=k,
                      backend=backend, num_chains=None if chains is None else int(chains[0]),
                      effective_sample_size=ess, chain_neighbour_fraction=fraction)


def knn_kl(x, y, k: int = 5, *, backend: str = "cpp", num_threads: int | None = None, workers=_UNSET,
           return_details=_UNSET) -> float:
    """k-nearest-neighbour estimate of KL(P || Q) in nats from x ~ P and y ~ Q.

    Wang et al.'s eq. 5, D = d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)). Repeated points
    are left out of their own terms: with z_i copies of x_i in x and w_i in y, rho_i and nu_i are
    the k-th smallest *positive* distances from x_i to x and to y, and the term's sample sizes are
    n - 1 - z_i and m - w_i (module docstring). Consistent and asymptotically unbiased for
    continuous P and Q; biased at finite n (in 3-D, n = m = 5000, about 0.04 nats low for Gaussians).

    k = 5 by default: k = 1 (Wang et al.'s and ITE's usual choice, this function's default before)
    has the largest variance and, on MCMC draws with repeated points, a large bias (-0.7 nats on
    HMC-like repeats where k = 5 is within 0.02; module docstring); pass ``k=1`` for it.

    Args:
        x: ``(n, d)`` samples from P, n >= 2, or chains ``(num_chains, num_draws, d)`` (as
            ``HMCResult.samples``; flattened, and checked for autocorrelation: module docstring).
        y: ``(m, d)`` samples from Q, m >= 1, or chains ``(num_chains, num_draws, d)`` (flattened).
        k: neighbour rank, 1 <= k < n and k <= m.
        backend: ``"cpp"`` (default), ``"numba"`` or ``"scipy"`` (cKDTree; needs scipy).
        num_threads: threads, >= 1; None uses every core this process may run on (on a shared
            machine, pass a count). The result does not depend on it.
        workers: deprecated name of ``num_threads`` (a DeprecationWarning).
        return_details: deprecated (a DeprecationWarning): ``True`` returns :func:`knn_kl_estimate`'s
            :class:`KLEstimate` instead of a float; call that function instead.

    Returns:
        The estimate, a finite float.

    Raises:
        ValueError: x or y not 2-D or 3-D, different dimensions, n < 2, m < 1, k < 1, k >= n, k > m,
            non-finite values, too many duplicates for k (some x_i has fewer than k points distinct
            from it in x or in y), num_threads < 1 or >= 2**31.
        TypeError: x or y complex or not numbers, k or num_threads not an integer, both
            num_threads and workers given.

    Warns:
        AutocorrelationWarning: x is chains whose own neighbouring draws set rho_i (biased upwards).

    References:
        Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
        k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(size=(20000, 2)), rng.normal(1.0, 1.0, size=(20000, 2))
        >>> round(knn_kl(x, y), 1)  # exact: gaussian_kl(...) = 1.0
        1.0
    """
    backend = choice(backend, "backend", BACKENDS)
    threads = _thread_count(num_threads, workers)
    if return_details is not _UNSET:
        if not isinstance(return_details, bool | np.bool_):
            raise TypeError("return_details must be a bool")
        warnings.warn("knn_kl(return_details=...) is deprecated: call knn_kl_estimate for a KLEstimate",
                      DeprecationWarning, stacklevel=2)
        if return_details:
            return _knn_kl_estimate(x, y, k, backend, threads, stacklevel=3)
    value, terms, rho, _, _, _, x, chains = _estimate(x, y, k, backend, threads)
    if chains is not None:
        _chain_checks(None, rho, x, chains, int(k), stacklevel=2)
    return value


def _cholesky(cov: np.ndarray, name: str) -> np.ndarray:
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
        raise ValueError(f"{name} must be symmetric")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None


def gaussian_kl(mu0, cov0, mu1, cov1) -> float:
    """KL(N(mu0, cov0) || N(mu1, cov1)) in nats, in closed form.

    KL = 1/2 [tr(cov1^-1 cov0) + (mu1 - mu0)^T cov1^-1 (mu1 - mu0) - d + log det cov1 - log det cov0].

    Args:
        mu0, mu1: ``(d,)`` means.
        cov0, cov1: ``(d, d)`` symmetric positive definite covariances.

    Returns:
        The divergence (>= 0).

    Raises:
        ValueError: shapes that do not match, non-finite values, covariances not symmetric positive definite.

    References:
        Kullback, "Information Theory and Statistics" (1959); see e.g. Duchi, "Derivations for
        linear algebra and optimization", Sec. 9.

    Example:
        >>> import numpy as np
        >>> gaussian_kl(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
        1.0
    """
    mu0 = as_float_array(mu0, "mu0", ndim=1)
    mu1 = as_float_array(mu1, "mu1", ndim=1)
    cov0 = as_float_array(cov0, "cov0", ndim=2)
    cov1 = as_float_array(cov1, "cov1", ndim=2)
    d = mu0.shape[0]
    if d < 1:
        raise ValueError("mu0 must hold at least one value")
    if mu1.shape != (d,):
        raise ValueError(f"mu1 must have shape ({d},) like mu0, got {mu1.shape}")
    for name, cov in (("cov0", cov0), ("cov1", cov1)):
        if cov.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {cov.shape}")
    l0 = _cholesky(cov0, "cov0")
    l1 = _cholesky(cov1, "cov1")
    # cov1^-1 cov0 = L1^-T (L1^-1 L0)(L1^-1 L0)^T L1^T: its trace is ||L1^-1 L0||_F^2.
    a = np.linalg.solve(l1, l0)
    b = np.linalg.solve(l1, mu1 - mu0)
    log_det = 2.0 * (np.log(np.diag(l1)).sum() - np.log(np.diag(l0)).sum())
    return float(0.5 * (np.sum(a * a) + b @ b - d + log_det))

