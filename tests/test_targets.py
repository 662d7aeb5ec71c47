"""Banana and Gaussian targets: every implementation against the per-datum reference and torch
autograd; exact ground truth against independent brute-force integration."""

import math

import numpy as np
import pytest
import torch

from pyvi.targets import Banana, Gaussian, LogDensity
from pyvi.targets.banana import DEFAULT_SEED, DEFAULT_THETA

BACKENDS = ["numpy", "cpp", "numba"]


def _points(rng, n=64, scale=2.0):
    return rng.normal(scale=scale, size=(n, 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_banana_log_prob_matches_per_datum_reference(homework_banana, backend, rng):
    points = _points(rng)
    log_prob, _ = homework_banana.log_prob_and_grad(points, backend=backend)
    reference = np.array([homework_banana.log_prob_reference(p) for p in points])
    np.testing.assert_allclose(log_prob, reference, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_banana_gradient_matches_torch_autograd(homework_banana, backend, rng):
    points = _points(rng)
    theta = torch.tensor(points, requires_grad=True)
    homework_banana.log_prob(theta).sum().backward()
    _, grad = homework_banana.log_prob_and_grad(points, backend=backend)
    np.testing.assert_allclose(grad, theta.grad.numpy(), rtol=1e-11, atol=1e-9)


def test_native_backends_agree_to_the_bit(homework_banana, rng):
    # Same sufficient statistics and the same operations: C++ and Numba give identical numbers.
    points = _points(rng, n=1000, scale=5.0)
    cpp = homework_banana.log_prob_and_grad(points, backend="cpp")
    numba = homework_banana.log_prob_and_grad(points, backend="numba")
    np.testing.assert_array_equal(cpp[0], numba[0])
    np.testing.assert_array_equal(cpp[1], numba[1])


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_torch_log_prob_matches_numpy(homework_banana, impl, rng):
    points = _points(rng)
    expected = homework_banana.log_prob(points)
    got = homework_banana.log_prob(torch.tensor(points), impl=impl)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12)


def test_batch_shapes_are_kept(default_banana, rng):
    points = rng.normal(size=(3, 4, 2))
    for backend in BACKENDS:
        log_prob, grad = default_banana.log_prob_and_grad(points, backend=backend)
        assert log_prob.shape == (3, 4) and grad.shape == (3, 4, 2)
    scalar, grad = default_banana.log_prob_and_grad([0.1, 0.2])
    assert isinstance(scalar, float) and grad.shape == (2,)


def test_log_evidence_on_homework_data(homework_banana):
    assert homework_banana.num_data == 100
    assert abs(homework_banana.log_evidence() - (-208.9429)) < 1e-4


@pytest.mark.parametrize("make", [lambda: Banana.default(), lambda: Banana([3.0], sigma_y=0.5, sigma_theta=2.0),
                                  lambda: Banana(np.full(50, -4.0))])
def test_exact_ground_truth_against_brute_force_2d_integration(make):
    """log p(y), the mean and covariance from the 1-D quadrature agree with a plain 2-D
    Riemann sum of the log joint over a wide fine grid (independent of the marginal formula)."""
    banana = make()
    mean, cov = banana.posterior_moments()
    # Centre a grid on the exact mean: +-12 sd in theta1, and theta2 wide enough for both arms.
    half1 = 12 * math.sqrt(cov[0, 0])
    half2 = 12 * math.sqrt(cov[1, 1] + mean[1] ** 2) + 1.0
    t1 = np.linspace(mean[0] - half1, mean[0] + half1, 1201)
    t2 = np.linspace(-half2, half2, 1201)
    grid = np.stack(np.meshgrid(t1, t2, indexing="ij"), axis=-1)
    log_joint = banana.log_prob(grid)
    peak = log_joint.max()
    weights = np.exp(log_joint - peak)
    cell = (t1[1] - t1[0]) * (t2[1] - t2[0])
    mass = weights.sum() * cell
    assert abs(peak + math.log(mass) - banana.log_evidence()) < 1e-6
    p = weights / weights.sum()
    grid_mean = np.einsum("ij,ijk->k", p, grid)
    centred = grid - grid_mean
    grid_cov = np.einsum("ij,ijk,ijl->kl", p, centred, centred)
    np.testing.assert_allclose(mean, grid_mean, atol=1e-6)
    np.testing.assert_allclose(cov, grid_cov, atol=1e-6)


def test_sample_exact_matches_exact_moments(homework_banana):
    draws = homework_banana.sample_exact(200_000, seed=1)
    mean, cov = homework_banana.posterior_moments()
    n = len(draws)
    # Standard errors: sd / sqrt(n) for means; for variances sqrt(Var((x - mu)^2) / n).
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * se_mean)
    centred = draws - mean
    for k in range(2):
        se_var = np.std(centred[:, k] ** 2) / math.sqrt(n)
        assert abs(np.mean(centred[:, k] ** 2) - cov[k, k]) < 4 * se_var
    se_cov = np.std(centred[:, 0] * centred[:, 1]) / math.sqrt(n)
    assert abs(np.mean(centred[:, 0] * centred[:, 1])) < 4 * se_cov


def test_sample_exact_theta2_marginal_against_its_cdf(homework_banana):
    """Kolmogorov-Smirnov distance of |theta2| draws to the CDF from quadrature."""
    draws = np.abs(homework_banana.sample_exact(50_000, seed=2)[:, 1])
    quadrature = homework_banana._quadrature
    grid = quadrature.grid
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * quadrature.spacing * (quadrature.density[:-1] + quadrature.density[1:]))])
    empirical = np.searchsorted(np.sort(draws), grid, side="right") / len(draws)
    assert np.max(np.abs(empirical - cdf)) < 1.63 / math.sqrt(len(draws))  # KS 1% critical value


def test_sample_exact_is_seeded(default_banana):
    np.testing.assert_array_equal(default_banana.sample_exact(10, seed=3), default_banana.sample_exact(10, seed=3))
    assert default_banana.sample_exact(0, seed=3).shape == (0, 2)


def test_density_grid_integrates_to_one(homework_banana):
    g1, g2, density = homework_banana.density_grid((-6, 3), (-3, 3), 400)
    cell = (g1[0, 1] - g1[0, 0]) * (g2[1, 0] - g2[0, 0])
    assert g1.shape == density.shape == (400, 400)
    assert abs(density.sum() * cell - 1.0) < 1e-3


def test_default_data_is_documented_simulation():
    banana = Banana.default()
    rng = np.random.default_rng(DEFAULT_SEED)
    expected = DEFAULT_THETA[0] + DEFAULT_THETA[1] ** 2 + 2.0 * rng.standard_normal(100)
    np.testing.assert_array_equal(banana.y, expected)
    assert not banana.y.flags.writeable


def test_from_file_round_trip(tmp_path):
    path = tmp_path / "y.npy"
    np.save(path, np.arange(5.0))
    assert Banana.from_file(path).num_data == 5
    with pytest.raises(FileNotFoundError):
        Banana.from_file(tmp_path / "missing.npy")
    (tmp_path / "bad.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="path"):
        Banana.from_file(tmp_path / "bad.npy")
    np.save(tmp_path / "matrix.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="y must be a 1-D"):
        Banana.from_file(tmp_path / "matrix.npy")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(y=[]), ValueError, "y must hold"),
        (dict(y=[1.0, np.nan]), ValueError, "y must contain only finite"),
        (dict(y=[[1.0]]), ValueError, "y must be a 1-D"),
        (dict(y=["a"]), TypeError, "y must be an array of numbers"),
        (dict(y=[1.0], sigma_y=0.0), ValueError, "sigma_y"),
        (dict(y=[1.0], sigma_y=-1.0), ValueError, "sigma_y"),
        (dict(y=[1.0], sigma_theta=np.inf), ValueError, "sigma_theta"),
        (dict(y=[1.0], sigma_theta="1"), TypeError, "sigma_theta"),
        (dict(y=[1e200, -1e200]), ValueError, "overflows"),
    ],
)
def test_banana_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        Banana(**kwargs)


def test_banana_bad_theta(default_banana):
    with pytest.raises(ValueError, match="theta must have shape"):
        default_banana.log_prob_and_grad(np.zeros(3))
    with pytest.raises(ValueError, match="theta must contain only finite"):
        default_banana.log_prob_and_grad([np.nan, 0.0], backend="cpp")
    with pytest.raises(ValueError, match="backend"):
        default_banana.log_prob_and_grad([0.0, 0.0], backend="fortran")
    with pytest.raises(ValueError, match="impl"):
        default_banana.log_prob(torch.zeros(2), impl="fast")
    with pytest.raises(ValueError, match="theta must have shape"):
        default_banana.log_prob(torch.zeros(3))
    with pytest.raises(ValueError, match="num_samples must be >= 0"):
        default_banana.sample_exact(-1)


def test_gaussian_target_against_closed_form(rng):
    from scipy.stats import multivariate_normal

    mean = np.array([1.0, -2.0, 0.5])
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 0.5 * np.eye(3)
    target = Gaussian(mean, cov)
    x = rng.normal(size=(10, 3))
    log_prob, grad = target.log_prob_and_grad(x)
    np.testing.assert_allclose(log_prob, multivariate_normal(mean, cov).logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(grad, -np.linalg.solve(cov, (x - mean).T).T, rtol=1e-9, atol=1e-12)
    from pyvi import _core

    core_lp, core_grad = _core.log_prob_and_grad(target.cpp_target(), x)
    np.testing.assert_allclose(core_lp, log_prob, rtol=1e-12)
    np.testing.assert_allclose(core_grad, grad, rtol=1e-12, atol=1e-12)
    # One normaliser, computed once by Gaussian and handed to every backend (issue #15 item 5).
    assert target.cpp_target().log_norm == target.numba_target().log_norm == target.log_norm


@pytest.mark.parametrize(
    "mean, cov, match",
    [([], [[]], "mean must hold"), ([0.0], [[1.0, 0.0]], "cov must have shape"), ([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], "positive definite"),
     ([0.0, 0.0], [[1.0, 0.1], [0.2, 1.0]], "symmetric"), ([np.inf], [[1.0]], "mean must contain only finite")],
)
def test_gaussian_bad_input(mean, cov, match):
    with pytest.raises(ValueError, match=match):
        Gaussian(mean, cov)


def test_log_density_wraps_callables():
    target = LogDensity(lambda x: -0.5 * float(x @ x), lambda x: -x, dim=2)
    assert target.log_prob_and_grad(np.array([1.0, 2.0]))[0] == -2.5
    with pytest.raises(TypeError, match="logdensity_fn"):
        LogDensity(3, lambda x: x, dim=2)
    with pytest.raises(ValueError, match="dim"):
        LogDensity(lambda x: 0.0, lambda x: x, dim=0)
    with pytest.raises(ValueError, match="grad_fn must return shape"):  # checked at construction, at zeros
        LogDensity(lambda x: 0.0, lambda x: np.zeros(3), dim=2)
