"""KL divergence: the k-nearest-neighbour estimator of Wang, Kulkarni & Verdu, and Gaussians' closed form.

:func:`knn_kl` estimates KL(P || Q) in nats from samples x ~ P (n x d) and y ~ Q (m x d) (eq. 5 of
the paper; the ITE toolbox's ``DKL_kNN_k`` estimator, which the homework uses)::

    D = d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),

where rho_k(i) is the distance from x_i to its k-th nearest neighbour among the other points of x
and nu_k(i) to its k-th nearest neighbour in y.

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
use k >= 5 (or thin the chain) for samples with many repeats.

Points are compared after all coordinates are scaled by one power of two (so that the largest
magnitude lies in [0.5, 1)); the scaling is exact and the estimate is scale free, it only keeps
squared distances from overflowing. If some x_i has fewer than k points of x, or of y, that differ
from it (all points of x identical, say), rho_i or nu_i does not exist and a ValueError says so.
For finite input the result is therefore always a finite number or a ValueError.

Backends (all exact, so they agree up to float rounding):

- ``"cpp"``: ``pyvi._core``; a k-d tree written for this job (leaves contiguous in tree order,
  compile-time paths for d = 1, 2, 3, queries in tree order, GIL released, ``workers`` threads;
  in 2-D with k <= 8 the points of one leaf search together, with SSE2 leaf scans).
- ``"numba"``: ``pyvi._numba.knn``; its own array-based k-d tree, queries in a ``prange``.
- ``"scipy"``: ``scipy.spatial.cKDTree`` (the baseline, as ITE does it); it asks for more
  neighbours where copies hide the k-th distinct one. scipy is a development dependency only.

References:
    Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
    k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.
    Szabo, "Information theoretical estimators toolbox", JMLR 15 (2014) (ITE).
    Perez-Cruz, "Kullback-Leibler divergence estimation of continuous distributions", ISIT 2008.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, choice, count

__all__ = ["knn_kl", "KLEstimate", "gaussian_kl", "BACKENDS"]

BACKENDS = ("cpp", "numba", "scipy")
#: Points per leaf (measured best in 2-D at n = 1e5 and 1e6: the C++ search is branch free inside a
#: leaf, and in 2-D a leaf's points search together).
_LEAF_SIZE = {"cpp": 32, "numba": 12}


@dataclass(frozen=True)
class KLEstimate:
    """A k-NN KL estimate with its per-point terms (``knn_kl(..., return_details=True)``).

    Attributes:
        value: the estimate of KL(P || Q) in nats.
        standard_error: std(terms) / sqrt(n), the naive standard error of the mean of the terms (it
            ignores the weak dependence between terms through shared neighbours).
        terms: ``(n,)`` per-point terms d log(nu_i / rho_i) + log((m - w_i) / m) - log((n - 1 - z_i) / (n - 1));
            value equals ``terms.mean() + log(m / (n - 1))``.
        rho: ``(n,)`` k-th smallest positive distance from x_i to the other points of x.
        nu: ``(n,)`` k-th smallest positive distance from x_i to the points of y.
        copies_x: ``(n,)`` z_i, the other points of x equal to x_i.
        copies_y: ``(n,)`` w_i, the points of y equal to x_i.
        k: the k asked for.
        backend: which backend computed it.
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

    def __float__(self) -> float:
        return self.value


def _check(x, y, k, finite: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """The checks of every backend, in the documented order (``finite=False``: all but the last,
    finiteness, which pyvi._core checks itself in a parallel pass, with the same messages)."""
    x = as_float_array(x, "x", finite=False)
    y = as_float_array(y, "y", finite=False)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array (n points, d dimensions), got shape {x.shape}")
    if y.ndim != 2:
        raise ValueError(f"y must be a 2-D array (m points, d dimensions), got shape {y.shape}")
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
    return np.ascontiguousarray(x), np.ascontiguousarray(y), k


def _scale_exponent(x: np.ndarray, y: np.ndarray) -> int:
    """e with max |value| in [2^(e-1), 2^e) (0 if all values are 0), as pyvi._core computes it."""
    largest = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)))
    return math.frexp(largest)[1] if largest > 0.0 else 0


def _duplicate_error(rho2: np.ndarray, nu2: np.ndarray, k: int) -> None:
    bad = np.flatnonzero(np.isinf(rho2))
    if bad.size:
        raise ValueError(f"x: point {bad[0]} has fewer than k = {k} other points of x distinct from it "
                         "(too many duplicates for this k)")
    bad = np.flatnonzero(np.isinf(nu2))
    if bad.size:
        raise ValueError(f"y: fewer than k = {k} points of y differ from x[{bad[0]}] (too many duplicates for this k)")


def _kth_positive(tree, queries: np.ndarray, k: int, first: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Squared k-th smallest positive distance and count of zero distances per query, from cKDTree
    queries that ask for more neighbours wherever copies hide the k-th positive one."""
    size = tree.n
    kth2 = np.full(len(queries), np.inf)
    zeros = np.zeros(len(queries), np.int64)
    todo = np.arange(len(queries))
    asked = min(first, size)
    while todo.size:
        distances, _ = tree.query(queries[todo], k=asked, workers=workers)
        distances = distances.reshape(len(todo), asked)
        found = (distances == 0.0).sum(axis=1)
        done = asked - found >= k
        rows = todo[done]
        kth = distances[done, found[done] + k - 1]
        kth2[rows] = kth * kth
        zeros[rows] = found[done]
        todo = todo[~done]
        if asked == size:
            break  # the rest have fewer than k positive distances: left at +inf
        asked = min(size, 2 * asked + k)
    return kth2, zeros


def _scipy(xs: np.ndarray, ys: np.ndarray, k: int, workers: int):
    try:
        from scipy.spatial import cKDTree
    except ImportError as error:
        raise ImportError("backend='scipy' needs scipy (a development dependency: `pip install scipy`); "
                          "use backend='cpp' or 'numba' otherwise") from error
    rho2, zeros_x = _kth_positive(cKDTree(xs), xs, k, k + 1, workers)
    nu2, zeros_y = _kth_positive(cKDTree(ys), xs, k, k, workers)
    copies_x, copies_y = zeros_x - 1, zeros_y  # zeros_x counts x_i itself
    if np.isinf(rho2).any() or np.isinf(nu2).any():
        return rho2, nu2, copies_x, copies_y, None, None
    n, m = len(xs), len(ys)
    with np.errstate(all="raise"):
        terms = 0.5 * xs.shape[1] * (np.log(nu2) - np.log(rho2))
        terms += np.log1p(-copies_y / m) - np.log1p(-copies_x / (n - 1))
    return rho2, nu2, copies_x, copies_y, terms, math.fsum(terms)


def _numba(xs: np.ndarray, ys: np.ndarray, k: int, workers: int | None):
    require("numba")
    from pyvi._numba.knn import knn_kl as numba_knn_kl
    from pyvi._numba.threads import num_threads

    with num_threads(workers):
        return numba_knn_kl(xs, ys, k, _LEAF_SIZE["numba"])


def knn_kl(x, y, k: int = 1, *, backend: str = "cpp", workers: int | None = None,
           return_details: bool = False) -> float | KLEstimate:
    """k-nearest-neighbour estimate of KL(P || Q) in nats from x ~ P and y ~ Q.

    Wang et al.'s eq. 5, D = d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)). Repeated points
    are left out of their own terms: with z_i copies of x_i in x and w_i in y, rho_i and nu_i are
    the k-th smallest *positive* distances from x_i to x and to y, and the term's sample sizes are
    n - 1 - z_i and m - w_i (module docstring). Consistent and asymptotically unbiased for
    continuous P and Q; biased at finite n (in 3-D, n = m = 5000, about 0.04 nats low for Gaussians).

    Args:
        x: ``(n, d)`` samples from P, n >= 2.
        y: ``(m, d)`` samples from Q, m >= 1.
        k: neighbour rank, 1 <= k < n and k <= m.
        backend: ``"cpp"`` (default), ``"numba"`` or ``"scipy"`` (cKDTree; needs scipy).
        workers: threads; None uses all cores. The result does not depend on it.
        return_details: return a :class:`KLEstimate` (per-point terms, standard error) instead of a float.

    Returns:
        The estimate (a finite float), or a :class:`KLEstimate`.

    Raises:
        ValueError: x or y not 2-D, different dimensions, n < 2, m < 1, k < 1, k >= n, k > m,
            non-finite values, or too many duplicates for k (some x_i has fewer than k points
            distinct from it in x or in y).

    References:
        Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
        k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(size=(20000, 2)), rng.normal(1.0, 1.0, size=(20000, 2))
        >>> round(knn_kl(x, y, k=5), 1)  # exact: gaussian_kl(...) = 1.0
        1.0
    """
    backend = choice(backend, "backend", BACKENDS)
    if workers is not None:
        workers = count(workers, "workers", minimum=1)
    if not isinstance(return_details, bool | np.bool_):
        raise TypeError("return_details must be a bool")
    x, y, k = _check(x, y, k, finite=backend != "cpp")
    n, d = x.shape
    m = y.shape[0]
    if backend == "cpp":
        out = require("cpp").knn_kl(x, y, k, 0 if workers is None else workers, _LEAF_SIZE["cpp"])
        value, terms, rho, nu = out["value"], out["terms"], out["rho"], out["nu"]
        copies_x, copies_y = out["copies_x"], out["copies_y"]
    else:
        exponent = _scale_exponent(x, y)
        xs, ys = np.ldexp(x, -exponent), np.ldexp(y, -exponent)
        if backend == "numba":
            rho2, nu2, copies_x, copies_y, terms, total = _numba(xs, ys, k, workers)
        else:
            rho2, nu2, copies_x, copies_y, terms, total = _scipy(xs, ys, k, -1 if workers is None else workers)
        _duplicate_error(rho2, nu2, k)
        value = total / n + math.log(m / (n - 1))
        rho, nu = np.ldexp(np.sqrt(rho2), exponent), np.ldexp(np.sqrt(nu2), exponent)
    value = float(value)
    if not return_details:
        return value
    standard_error = float(np.std(terms, ddof=1) / math.sqrt(n))
    return KLEstimate(value=value, standard_error=standard_error, terms=terms, rho=rho, nu=nu,
                      copies_x=np.asarray(copies_x, np.int64),
                      copies_y=np.asarray(copies_y, np.int64), k=k, backend=backend)


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

