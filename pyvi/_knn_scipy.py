"""The k-NN KL estimator's ``scipy`` backend: ``scipy.spatial.cKDTree`` (the baseline, as the ITE
toolbox computes it), under the same duplicate rule and distances as ``pyvi._core`` and
``pyvi._numba.knn`` (see :mod:`pyvi.divergence`).

Three ways, chosen by the input:

- distinct points (no value repeats in the first column of x, nor of y: one sort each, about 1% of
  the search): each point's k + 1 (rho) or k (nu) nearest neighbours, more where a copy of x_i in y
  hides the k-th positive one (at most one: y has no copies);
- copies: cKDTree visits every copy at distance 0 before it can prune (a query among c copies costs
  c, so n copies of one point cost n^2; its queries asking for the copies ran out of memory), so the
  points are collapsed first: the k + 1 nearest *distinct* points of each distinct point of x,
  weighted by their multiplicities, hold its k-th positive distance (at most one of them is a copy);
- a dynamic range that makes squared distances inexact (``robust``, see
  ``csrc/core/robust_search.hpp``): on the distinct points, the k-th positive Chebyshev (L-inf)
  distance r (exact: no squares), then every point within L-inf distance sqrt(d) r (the Euclidean
  k-th distance lies in [r, sqrt(d) r]), whose log distances are then computed with
  robust_search.hpp's formula, in its order and with the same libm log: the same bits as the
  other backends.

scipy is a development dependency only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["distances", "robust_log_distance"]


def distances(xs: np.ndarray, ys: np.ndarray, k: int, workers: int, robust: bool):
    """(rho, nu, copies_x, copies_y) per point of x, for x and y already scaled: rho and nu squared
    (``robust``: their logs); +inf where fewer than k points differ from x_i."""
    try:
        from scipy.spatial import cKDTree
    except ImportError as error:
        raise ImportError("backend='scipy' needs scipy (a development dependency: `pip install scipy`); "
                          "use backend='cpp' or 'numba' otherwise") from error
    if not robust and not _first_column_repeats(xs) and not _first_column_repeats(ys):
        rho2, zeros_x = _kth_positive(cKDTree(xs), xs, k, k + 1, workers)
        nu2, zeros_y = _kth_positive(cKDTree(ys), xs, k, k, workers)
        return rho2, nu2, zeros_x - 1, zeros_y  # zeros_x counts x_i itself
    unique_x, inverse, count_x = np.unique(xs, axis=0, return_inverse=True, return_counts=True)
    unique_y, count_y = np.unique(ys, axis=0, return_counts=True)
    inverse = inverse.reshape(-1)
    if robust:
        rho, zeros_x = _robust_kth_positive(cKDTree, unique_x, count_x, unique_x, k, workers)
        nu, zeros_y = _robust_kth_positive(cKDTree, unique_y, count_y, unique_x, k, workers)
    else:
        rho, zeros_x = _weighted_kth_positive(cKDTree(unique_x), count_x, unique_x, k, workers, 2.0)
        nu, zeros_y = _weighted_kth_positive(cKDTree(unique_y), count_y, unique_x, k, workers, 2.0)
        rho, nu = rho * rho, nu * nu
    return rho[inverse], nu[inverse], zeros_x[inverse] - 1, zeros_y[inverse]


def _first_column_repeats(points: np.ndarray) -> bool:
    """Whether some value repeats in column 0 (necessary for a repeated point)."""
    column = np.sort(points[:, 0])
    return bool((column[1:] == column[:-1]).any())


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


def _weighted_kth_positive(tree, counts: np.ndarray, queries: np.ndarray, k: int, workers: int,
                           p: float) -> tuple[np.ndarray, np.ndarray]:
    """k-th smallest positive L-p distance (+inf if fewer) from each query to the tree's distinct
    points, point j counting counts[j] times, and the multiplicity of the query among them (0 if
    absent). The k + 1 nearest distinct points hold both: at most one is at distance 0, and the
    others weigh at least 1 each."""
    asked = min(k + 1, tree.n)
    distance, index = tree.query(queries, k=asked, p=p, workers=workers)
    distance, index = distance.reshape(len(queries), asked), index.reshape(len(queries), asked)
    zero = distance == 0.0
    weight = np.where(zero, 0, counts[index])
    cumulative = np.cumsum(weight, axis=1)
    column = np.argmax(cumulative >= k, axis=1)
    kth = np.where(cumulative[:, -1] >= k, distance[np.arange(len(queries)), column], np.inf)
    return kth, np.where(zero, counts[index], 0).sum(axis=1)


def robust_log_distance(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """csrc/core/robust_search.hpp's log distance between rows, v = points - queries:
    log s + log(sum_j (v_j / s)^2) / 2, s = max_j |v_j|, summed over j in order; from the halves
    (plus log 2) where a difference overflows; -inf for equal rows. The logs are libm's
    (``math.log``, as the C++ and Numba backends call it; numpy's own may differ in the last bit)."""
    with np.errstate(over="ignore"):
        v = points - queries
    s = np.abs(v).max(axis=1)
    halve = np.isinf(s)
    if halve.any():
        v[halve] = points[halve] * 0.5 - queries[halve] * 0.5
        s[halve] = np.abs(v[halve]).max(axis=1)
    t = np.zeros(len(v))
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(v.shape[1]):
            r = v[:, j] / s
            t += r * r
    log = np.frompyfunc(math.log, 1, 1)
    positive = s > 0.0
    out = np.full(len(v), -np.inf)
    if positive.any():
        log_s = log(s[positive]).astype(np.float64)
        log_s[halve[positive]] += 0.6931471805599453  # log 2
        out[positive] = log_s + 0.5 * log(t[positive]).astype(np.float64)
    return out


def _robust_kth_positive(kdtree, points: np.ndarray, counts: np.ndarray, queries: np.ndarray, k: int,
                         workers: int) -> tuple[np.ndarray, np.ndarray]:
    """_weighted_kth_positive for robust_search.hpp's log distance, over the distinct ``points``:
    the k-th positive L-inf distance r bounds the Euclidean k-th to [r, sqrt(d) r], so the points
    within L-inf distance sqrt(d) r are the candidates, measured with robust_log_distance.

    The L-inf search runs on halved coordinates (differences of doubles may overflow, halves' never):
    only a superset of the candidates matters, and halving changes a distance by at most its
    relative rounding plus 2^-1074, which the radius allows for; where halving merges a query's
    neighbours into copies so that fewer than k remain, every point is a candidate."""
    halves, half_queries = points * 0.5, queries * 0.5
    tree = kdtree(halves)
    r_inf, _ = _weighted_kth_positive(tree, counts, half_queries, k, workers, np.inf)
    d = queries.shape[1]
    with np.errstate(over="ignore"):  # a radius past the largest double is +inf: every point a candidate
        radius = r_inf * math.sqrt(d) * (1.0 + 1e-9) + 4.0 * (math.sqrt(d) + 1.0) * 5e-324
    candidates = tree.query_ball_point(half_queries, radius, p=np.inf, workers=workers)
    lengths = np.fromiter((len(c) for c in candidates), np.int64, len(candidates))
    owner = np.repeat(np.arange(len(queries)), lengths)  # each candidate's query
    index = np.fromiter((j for c in candidates for j in c), np.int64, int(lengths.sum()))
    distance = robust_log_distance(points[index], queries[owner])
    copy = distance == -np.inf
    weight = np.where(copy, 0, counts[index])
    zeros = np.bincount(owner, weights=np.where(copy, counts[index], 0), minlength=len(queries)).astype(np.int64)
    order = np.lexsort((distance, owner))  # by query, then distance
    owner, distance, weight = owner[order], distance[order], weight[order]
    cumulative = np.cumsum(weight)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nonempty = lengths > 0
    within = cumulative - (cumulative - weight)[starts[owner]]  # running weight within each query's candidates
    hit = np.where(within >= k, np.arange(len(within)), len(within))
    first_hit = np.full(len(queries), len(within))  # len(within): fewer than k positive, +inf
    if nonempty.any():
        first_hit[nonempty] = np.minimum.reduceat(hit, starts[nonempty])
    return np.append(distance, np.inf)[first_hit], zeros
