"""pyvi.divergence: the k-NN KL estimator (three backends against a brute-force numpy reference and
each other), its duplicate rule, closed-form Gaussian checks, bad input, and the _core boundary."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvi import divergence
from pyvi._backend import require
from pyvi.divergence import BACKENDS, gaussian_kl, knn_kl, knn_kl_estimate

_core = require("cpp")


def reference_knn_kl(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    """The documented rule, point by point with dense distances: (value, rho, nu)."""
    n, d = x.shape
    m = y.shape[0]
    terms, rho, nu = [], [], []
    for i in range(n):
        to_x = np.sqrt(((np.delete(x, i, axis=0) - x[i]) ** 2).sum(axis=1))
        to_y = np.sqrt(((y - x[i]) ** 2).sum(axis=1))
        z, w = int((to_x == 0).sum()), int((to_y == 0).sum())
        rho.append(np.sort(to_x[to_x > 0])[k - 1])
        nu.append(np.sort(to_y[to_y > 0])[k - 1])
        terms.append(d * math.log(nu[-1] / rho[-1]) + math.log((m - w) / (n - 1 - z)))
    return float(np.mean(terms)), np.array(rho), np.array(nu)


def with_duplicates(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HMC-like repeats: runs of copies in x, a few y points equal to x points, repeated y points."""
    x, y = x.copy(), y.copy()
    n = len(x)
    x[10:40] = x[3]  # a long rejection run
    x[50:53] = x[47]
    rows = rng.integers(0, n, size=n // 5)
    x[rows] = x[rng.integers(0, n, size=rows.size)]
    y[:4] = x[3]  # copies of x_3 in y too
    y[5:8] = y[9]
    return x, y


@pytest.mark.parametrize("duplicates", [False, True], ids=["distinct", "duplicates"])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_backends_agree_with_each_other_and_the_reference(d, k, duplicates):
    rng = np.random.default_rng(100 * d + k)
    x, y = rng.normal(size=(500, d)), rng.normal(0.3, 1.2, size=(400, d))
    if duplicates:
        x, y = with_duplicates(rng, x, y)
    results = {b: knn_kl_estimate(x, y, k, backend=b) for b in BACKENDS}
    cpp = results["cpp"]
    for backend, result in results.items():
        assert math.isfinite(result.value)
        assert result.value == pytest.approx(cpp.value, rel=1e-10, abs=1e-12), backend
        np.testing.assert_allclose(result.rho, cpp.rho, rtol=1e-12, err_msg=backend)
        np.testing.assert_allclose(result.nu, cpp.nu, rtol=1e-12, err_msg=backend)
        np.testing.assert_array_equal(result.copies_x, cpp.copies_x, err_msg=backend)
        np.testing.assert_array_equal(result.copies_y, cpp.copies_y, err_msg=backend)
        assert result.value == pytest.approx(result.terms.mean() + math.log(len(y) / (len(x) - 1)), rel=1e-12, abs=1e-12)
    if duplicates:
        assert cpp.copies_x.max() >= 20 and cpp.copies_y.max() >= 4
    else:
        assert not cpp.copies_x.any() and not cpp.copies_y.any()
    if d in (1, 5):  # the dense reference is slow; two dimensions suffice
        value, rho, nu = reference_knn_kl(x[:200], y, k)
        small = knn_kl_estimate(x[:200], y, k)
        assert small.value == pytest.approx(value, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(small.rho, rho, rtol=1e-12)
        np.testing.assert_allclose(small.nu, nu, rtol=1e-12)


@pytest.mark.parametrize("k", [2, 4, 6, 7, 8, 9, 12])
@pytest.mark.parametrize("d", [2, 4])
def test_every_compiled_k_path_matches_scipy(d, k):
    # pyvi._core compiles k <= 8 specially and runs larger k through a generic path.
    rng = np.random.default_rng(k)
    x, y = with_duplicates(rng, rng.normal(size=(400, d)), rng.normal(size=(300, d)))
    cpp = knn_kl_estimate(x, y, k)
    ref = knn_kl_estimate(x, y, k, backend="scipy")
    assert cpp.value == pytest.approx(ref.value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(cpp.rho, ref.rho, rtol=1e-12)
    np.testing.assert_allclose(cpp.nu, ref.nu, rtol=1e-12)


def test_without_duplicates_it_is_eq5():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(250, 2))
    k = 3
    rho = np.sort(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), axis=1)[:, k]  # column 0 is x_i itself
    nu = np.sort(np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)), axis=1)[:, k - 1]
    eq5 = 2 * np.mean(np.log(nu / rho)) + math.log(250 / 299)
    for backend in BACKENDS:
        assert knn_kl(x, y, k, backend=backend) == pytest.approx(eq5, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_rule_by_hand(backend):
    # x = [0, 0, 1, 3], y = [0.5, 2, 4], k = 1. x_0, x_1: one copy each in x (z = 1), rho = 1,
    # nu = 0.5, term log(0.5) + log(3 / 2). x_2: rho = 1, nu = 0.5, term log(0.5) + log(3 / 3).
    # x_3: rho = 2, nu = 1 (tie), term log(0.5) + log(3 / 3).
    x = np.array([[0.0], [0.0], [1.0], [3.0]])
    y = np.array([[0.5], [2.0], [4.0]])
    result = knn_kl_estimate(x, y, 1, backend=backend)
    assert result.value == pytest.approx(math.log(0.5) + 0.5 * math.log(1.5), rel=1e-14)
    np.testing.assert_array_equal(result.rho, [1.0, 1.0, 1.0, 2.0])
    np.testing.assert_array_equal(result.nu, [0.5, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(result.copies_x, [1, 1, 0, 0])
    np.testing.assert_array_equal(result.copies_y, [0, 0, 0, 0])
    # A point of x that also lies in y: it is left out of nu and of m.
    y2 = np.array([[0.0], [2.0], [4.0]])
    result = knn_kl_estimate(x, y2, 1, backend=backend)
    np.testing.assert_array_equal(result.copies_y, [1, 1, 0, 0])
    np.testing.assert_array_equal(result.nu, [2.0, 2.0, 1.0, 1.0])
    assert result.value == pytest.approx(np.mean([math.log(2) + math.log(2 / 2)] * 2 + [0.0, math.log(0.5)]), rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_draws_estimate_near_zero_for_equal_distributions(backend):
    # iid N(0, I) draws, each repeated 1-3 times as by HMC rejections, against fresh N(0, I) draws:
    # the truth is 0. Counting copies as neighbours (eq. 17 with k_i = k + z_i) gives about +0.23
    # here; the leave-copies-out rule about +-0.02 (SE ~0.01).
    rng = np.random.default_rng(7)
    draws = rng.normal(size=(5000, 2))
    x = np.repeat(draws, rng.integers(1, 4, size=5000), axis=0)
    y = rng.normal(size=(10000, 2))
    assert abs(knn_kl(x, y, 5, backend=backend)) < 0.05
    shifted = knn_kl(x + np.array([1.0, 0.0]), y, 5, backend=backend)
    assert shifted == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_identical_points_are_a_clean_error(backend):
    x = np.ones((10, 2))
    y = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="x: point 0 has fewer than k = 1 other points of x distinct"):
        knn_kl(x, y, 1, backend=backend)
    # 4 copies of a, 5 of b, one c: a copy of b has 4 + 1 points distinct from it, so k <= 5 works.
    x2 = np.repeat([[0.0, 0.0], [1.0, 1.0]], [4, 5], axis=0)
    x2 = np.vstack([x2, [[2.0, 0.0]]])
    assert math.isfinite(knn_kl(x2, y, 5, backend=backend))
    with pytest.raises(ValueError, match=r"x: point 4 has fewer than k = 6 .* \(too many duplicates"):
        knn_kl(x2, y, 6, backend=backend)
    # y all equal to x_0: for x_0 no point of y differs from it.
    with pytest.raises(ValueError, match=r"y: fewer than k = 1 points of y differ from x\[0\]"):
        knn_kl(x2, np.zeros((3, 2)), 1, backend=backend)
    # x == y exactly: finite.
    z = np.random.default_rng(1).normal(size=(50, 3))
    assert math.isfinite(knn_kl(z, z, 2, backend=backend))


def test_results_do_not_depend_on_num_threads():
    rng = np.random.default_rng(3)
    x, y = with_duplicates(rng, rng.normal(size=(3000, 2)), rng.normal(size=(2000, 2)))
    for backend in BACKENDS:
        one = knn_kl_estimate(x, y, 3, backend=backend, num_threads=1)
        two = knn_kl_estimate(x, y, 3, backend=backend, num_threads=2)
        assert one.value == two.value, backend
        np.testing.assert_array_equal(one.terms, two.terms)
    assert knn_kl(x, y, 3) == knn_kl(x, y, 3, num_threads=1)


def test_core_tree_shapes_and_threads_do_not_change_results():
    # n above the C++ tree's subtree size (8192), so the build splits top levels and shares out
    # subtrees; leaf sizes below 8 with many equal points used to split a node of equal keys forever.
    rng = np.random.default_rng(8)
    x, y = with_duplicates(rng, rng.normal(size=(20000, 2)), rng.normal(size=(12000, 2)))
    x[:300] = x[0]  # 300 copies of one point: nodes whose keys are all equal
    ref = _core.knn_kl(x, y, 4, 1, 24)
    for threads, leaf_size in [(1, 1), (2, 1), (2, 2), (3, 5), (8, 24), (0, 24)]:
        got = _core.knn_kl(x, y, 4, threads, leaf_size)
        assert got["value"] == ref["value"], (threads, leaf_size)
        for key in ("terms", "rho", "nu", "copies_x", "copies_y"):
            np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{key} {threads} {leaf_size}")
    assert ref["value"] == pytest.approx(knn_kl(x, y, 4, backend="scipy"), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5, 8, 9])
def test_core_2d_leaf_scan_edge_cases_match_scipy(k):
    # The 2-D paths for k <= 8 (csrc/core/leaf_scan.hpp filters two points at a time in chunks of
    # 32; group_search.hpp searches for up to 32 queries of one leaf at once; k = 9 takes the
    # one-query search): leaves of odd sizes and of more than one chunk or group, one axis constant
    # (every distance along the other), exact duplicates and copies of x in y, n below one leaf.
    rng = np.random.default_rng(20 + k)
    x, y = with_duplicates(rng, rng.normal(size=(700, 2)), rng.normal(size=(500, 2)))
    x[100:200, 0] = 0.25  # one axis all equal in a block
    y[100:150, 0] = 0.25
    flat_x, flat_y = np.c_[np.zeros(60), rng.normal(size=60)], np.c_[np.zeros(40), rng.normal(size=40)]
    for xs, ys in [(x, y), (flat_x, flat_y), (x[-k - 5:], y[-k - 3:])]:
        ref = knn_kl_estimate(xs, ys, k, backend="scipy")
        numba_result = knn_kl_estimate(xs, ys, k, backend="numba")
        np.testing.assert_allclose(numba_result.rho, ref.rho, rtol=1e-12)
        np.testing.assert_allclose(numba_result.nu, ref.nu, rtol=1e-12)
        for leaf_size in (1, 3, 7, 24, 33, 64, 1000):
            got = _core.knn_kl(xs, ys, k, 1, leaf_size)
            assert got["value"] == pytest.approx(ref.value, rel=1e-10, abs=1e-12), leaf_size
            np.testing.assert_allclose(got["rho"], ref.rho, rtol=1e-12, err_msg=str(leaf_size))
            np.testing.assert_allclose(got["nu"], ref.nu, rtol=1e-12, err_msg=str(leaf_size))
            np.testing.assert_array_equal(got["copies_x"], ref.copies_x, err_msg=str(leaf_size))
            np.testing.assert_array_equal(got["copies_y"], ref.copies_y, err_msg=str(leaf_size))


@pytest.mark.parametrize("leaf_size", [1, 2, 12])
def test_numba_tree_is_a_valid_kd_tree(leaf_size):
    # Two-buffer partition at the sample mean, with the quickselect fallback for ties (300 copies,
    # one axis constant over a block): rows are a permutation, children split their parent's rows,
    # and every row lies in its node's tight box and cell, which the search's pruning relies on;
    # copies of one point beyond a leaf's size form uniform leaves.
    from pyvi._numba.knn import LEAF, UNIFORM, KDTree, build_tree

    rng = np.random.default_rng(leaf_size)
    original = rng.normal(size=(3000, 2))
    original[:300] = original[0]
    original[1000:1500, 1] = 0.5
    points = original.copy()
    tree = build_tree(points, leaf_size)
    assert isinstance(tree, KDTree)  # a named record, not an 8-tuple indexed by position
    index, begin, end, left = tree.index, tree.begin, tree.end, tree.left
    lo, hi, cell_lo, cell_hi = tree.lo, tree.hi, tree.cell_lo, tree.cell_hi
    np.testing.assert_array_equal(np.sort(index), np.arange(3000))
    np.testing.assert_array_equal(points, original[index])
    uniform_rows = 0
    for node in range(len(begin)):
        rows = points[begin[node]:end[node]]
        assert len(rows) > 0
        assert (rows >= lo[node]).all() and (rows <= hi[node]).all()
        assert (rows >= cell_lo[node]).all() and (rows <= cell_hi[node]).all()
        if left[node] == LEAF:
            assert len(rows) <= leaf_size
        elif left[node] == UNIFORM:  # more copies of one point than a leaf holds: one leaf
            assert len(rows) > leaf_size and (rows == rows[0]).all()
            uniform_rows += len(rows)
        else:
            c = left[node]
            assert begin[c] == begin[node] and end[c] == begin[c + 1] and end[c + 1] == end[node]
    assert uniform_rows > 300 - 4 * leaf_size  # the 300 copies, in a few uniform leaves


def test_scale_free_and_extreme_magnitudes():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(400, 3)), rng.normal(0.5, 1.0, size=(300, 3))
    base = knn_kl(x, y, 2)
    for factor in (1e-300, 1e-150, 2.0**-1000, 1e150, 1e300):
        for backend in BACKENDS:
            assert knn_kl(x * factor, y * factor, 2, backend=backend) == pytest.approx(base, rel=1e-9, abs=1e-12)


PAIRS = {
    # d: (mu0, cov0, mu1, cov1), fixed Gaussian pairs, KL 0.22 to 0.47 nats
    1: (np.zeros(1), np.eye(1), np.full(1, 0.5), np.array([[0.7]])),
    2: (np.zeros(2), np.array([[1.0, 0.5], [0.5, 1.0]]), np.array([0.5, 0.5]), np.diag([0.7, 1.3])),
    5: (np.zeros(5), np.eye(5), np.full(5, 0.3), np.eye(5)),
}


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 2, 5])
def test_converges_to_gaussian_closed_form(d):
    """Mean over replicates at n = m = 1e3, 1e4, 1e5 (k = 5): the bias shrinks with n, and at 1e5
    the mean is within 0.03 nats + 4 standard errors of the truth.

    Why 0.03: the estimator is only asymptotically unbiased. On these pairs, over two seeds, its
    mean bias measured -0.03/-0.08/-0.04..-0.06 nats (1-D/2-D/5-D) at n = 1e3 and at most
    -0.004/-0.011/-0.021 at n = 1e5. 0.03 keeps a margin over the slowest (5-D) case while an
    estimator with a wrong constant (log(m / n) for log(m / (n - 1)) aside, a wrong d factor or a
    missing term) misses these pairs by 0.1 nats or more. Standard error: the larger of the
    replicates' spread and the estimate's own naive standard error, over sqrt(replicates).
    """
    mu0, cov0, mu1, cov1 = PAIRS[d]
    truth = gaussian_kl(mu0, cov0, mu1, cov1)
    rng = np.random.default_rng(d)
    biases, errors = [], []
    for n, replicates in ((1_000, 20), (10_000, 6), (100_000, 3 if d < 5 else 2)):
        estimates = [knn_kl_estimate(rng.multivariate_normal(mu0, cov0, n), rng.multivariate_normal(mu1, cov1, n), 5)
                     for _ in range(replicates)]
        values = [e.value for e in estimates]
        biases.append(np.mean(values) - truth)
        errors.append(max(np.std(values, ddof=1), estimates[0].standard_error) / math.sqrt(replicates))
    assert abs(biases[2]) < 0.03 + 4 * errors[2], (truth, biases, errors)
    assert abs(biases[2]) < abs(biases[1]) < abs(biases[0]), (truth, biases, errors)
    assert biases[0] < -2 * errors[0], "the finite-n bias at 1e3 should be visible (else the test checks nothing)"


def test_equal_distributions_give_near_zero():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20000, 2)), rng.normal(size=(20000, 2))
    result = knn_kl_estimate(x, y, 5)
    assert 0.0 < result.standard_error < 0.01
    assert abs(result.value) < 4 * result.standard_error + 0.005


def test_gaussian_kl_closed_form():
    assert gaussian_kl([0.0], [[1.0]], [0.0], [[1.0]]) == 0.0
    # 1-D formula: log(s1/s0) + (s0^2 + (mu0 - mu1)^2) / (2 s1^2) - 1/2
    assert gaussian_kl([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(math.log(3 / 2) + (4 + 4) / 18 - 0.5, rel=1e-14)
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov0, cov1 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    mu0, mu1 = rng.normal(size=4), rng.normal(size=4)
    inv1 = np.linalg.inv(cov1)
    expected = 0.5 * (np.trace(inv1 @ cov0) + (mu1 - mu0) @ inv1 @ (mu1 - mu0) - 4
                      + np.linalg.slogdet(cov1)[1] - np.linalg.slogdet(cov0)[1])
    assert gaussian_kl(mu0, cov0, mu1, cov1) == pytest.approx(expected, rel=1e-12)
    assert gaussian_kl(mu0, cov0, mu1, cov1) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), "mu1 must have shape"),
        (([0.0], np.eye(2), [0.0], np.eye(1)), "cov0 must have shape"),
        (([0.0], [[1.0]], [0.0], [[-1.0]]), "cov1 must be positive definite"),
        (([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0], np.eye(2)), "cov0 must be symmetric"),
        (([np.nan], [[1.0]], [0.0], [[1.0]]), "mu0 must contain only finite"),
        ((np.zeros((1, 1)), [[1.0]], [0.0], [[1.0]]), "mu0 must be a 1-D"),
    ],
)
def test_gaussian_kl_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        gaussian_kl(*args)


_X = np.random.default_rng(0).normal(size=(10, 2))
BAD_INPUT = [
    (dict(x=_X[:, 0], y=_X), "x must be a 2-D array"),
    (dict(x=_X, y=_X[None, None]), "y must be a 2-D array"),
    (dict(x=_X, y=_X[:, :1]), "same dimension"),
    (dict(x=np.zeros((10, 0)), y=np.zeros((10, 0))), "at least one column"),
    (dict(x=_X[:1], y=_X), "x must hold at least 2 points"),
    (dict(x=_X, y=_X[:0]), "y must hold at least 1 point"),
    (dict(x=_X, y=_X, k=0), "k must be >= 1"),
    (dict(x=_X, y=_X, k=10), "k must be < len"),
    (dict(x=_X, y=_X[:3], k=4), "k must be <= len"),
    (dict(x=np.where(np.arange(20).reshape(10, 2) == 5, np.nan, _X), y=_X), "x must contain only finite"),
    (dict(x=_X, y=np.where(np.arange(20).reshape(10, 2) == 5, np.inf, _X)), "y must contain only finite"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input(backend, kwargs, message):
    with pytest.raises(ValueError, match=message):
        knn_kl(**kwargs, backend=backend)


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_at_the_core_boundary(kwargs, message):
    if "x must be a 2-D" in message or "y must be a 2-D" in message:
        message = "must be a 2-D array"
    with pytest.raises(ValueError, match=message):
        _core.knn_kl(kwargs["x"], kwargs["y"], kwargs.get("k", 1))


def test_bad_options():
    with pytest.raises(ValueError, match="backend must be one of"):
        knn_kl(_X, _X, backend="sklearn")
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        knn_kl(_X, _X, num_threads=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        knn_kl(_X, _X, k=1.5)
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        _core.knn_kl(_X, _X, 1, -1)
    with pytest.raises(ValueError, match="leaf_size must be >= 1"):
        _core.knn_kl(_X, _X, 1, 1, 0)


def test_scipy_missing_is_a_clear_import_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("no scipy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(ImportError, match="backend='scipy' needs scipy"):
        divergence.knn_kl(_X, _X, backend="scipy")


def _coordinates():
    magnitudes = st.sampled_from([1e-300, 1e-160, 1e-5, 1.0, 1e5, 1e160, 1e300])
    return st.builds(lambda u, s: u * s, st.floats(-1.0, 1.0), magnitudes)


@st.composite
def _samples(draw):
    d = draw(st.integers(0, 4))
    n = draw(st.integers(0, 12))
    m = draw(st.integers(0, 12))
    pool = draw(st.lists(_coordinates(), min_size=1, max_size=6))  # few values: many duplicates
    values = st.sampled_from(pool) | _coordinates() | st.sampled_from([np.nan, np.inf, 0.0])
    x = np.array(draw(st.lists(values, min_size=n * d, max_size=n * d)), dtype=float).reshape(n, d)
    y = np.array(draw(st.lists(values, min_size=m * d, max_size=m * d)), dtype=float).reshape(m, d)
    return x, y, draw(st.integers(-1, 6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_samples())
def test_core_boundary_never_crashes(sample):
    x, y, k = sample
    try:
        value = _core.knn_kl(x, y, k)["value"]
    except ValueError:
        with pytest.raises(ValueError):
            knn_kl(x, y, k, backend="scipy")
        return
    assert math.isfinite(value)
    assert knn_kl(x, y, k, backend="scipy") == pytest.approx(value, rel=1e-9, abs=1e-9)
