"""The exactly solvable targets: gradients, every face against the numpy one (cpp == numba bit for
bit), exact draws against exact moments and marginals, log evidence against quadrature."""

import math

import numpy as np
import pytest

from pyvi import hmc
from pyvi.ground_truth import score
from pyvi.targets import Funnel, Gaussian, GaussianMixture, HybridRosenbrock

TARGETS = {
    "gaussian": Gaussian([0.0, 1.0, -1.0], [[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]]),
    "funnel": Funnel(4),
    "funnel-noncentred": Funnel(4, centred=False),
    "mixture": GaussianMixture([0.2, 0.5, 0.3], [[-3.0, 0.0], [0.0, 2.0], [3.0, -1.0]],
                               [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.4]], [[2.0, -0.5], [-0.5, 1.0]]]),
    "rosenbrock": HybridRosenbrock(n1=3, n2=2, b=[[5.0, 2.0], [3.0, 1.0]]),
}


def _points(target, n=6, seed=0):
    scale = 0.5 if isinstance(target, HybridRosenbrock) else 1.0
    return scale * np.random.default_rng(seed).standard_normal((n, target.dim))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_gradient_matches_finite_differences(name):
    target = TARGETS[name]
    x = _points(target)
    _, grad = target.log_prob_and_grad(x)
    eps = 1e-6
    for i in range(target.dim):
        step = eps * np.eye(target.dim)[i]
        numeric = (target.log_prob_and_grad(x + step)[0] - target.log_prob_and_grad(x - step)[0]) / (2 * eps)
        np.testing.assert_allclose(grad[:, i], numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_native_faces_equal_numpy_and_each_other(name):
    from pyvi import _core
    from pyvi._numba.targets import log_prob_and_grad_batch

    target = TARGETS[name]
    x = _points(target, 50)
    expected_lp, expected_grad = target.log_prob_and_grad(x)
    cpp_lp, cpp_grad = _core.log_prob_and_grad(target.cpp_target(), x)
    numba_lp, numba_grad = log_prob_and_grad_batch(target.numba_target(), x)
    np.testing.assert_array_equal(numba_lp, cpp_lp)
    np.testing.assert_array_equal(numba_grad, cpp_grad)
    np.testing.assert_allclose(cpp_lp, expected_lp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cpp_grad, expected_grad, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_torch_face_and_autograd(name):
    import torch

    target = TARGETS[name]
    x = torch.tensor(_points(target), requires_grad=True)
    log_prob = target.torch_log_prob()(x)
    log_prob.sum().backward()
    expected_lp, expected_grad = target.log_prob_and_grad(x.detach().numpy())
    np.testing.assert_allclose(log_prob.detach().numpy(), expected_lp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["funnel", "mixture", "rosenbrock"])
def test_hmc_cpp_and_numba_draws_are_identical(name):
    target = TARGETS[name]
    initial = 0.3 * np.random.default_rng(1).standard_normal((3, target.dim))
    kwargs = dict(num_samples=60, num_warmup=60, step_size=0.05, num_steps=8, num_chains=3, random_steps=True,
                  seed=7, warn=False)
    cpp = hmc.sample(target, initial, backend="cpp", num_threads=1, **kwargs)
    numba = hmc.sample(target, initial, backend="numba", num_threads=2, **kwargs)
    for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
        np.testing.assert_array_equal(getattr(numba, field), getattr(cpp, field), err_msg=field)


def test_torch_backend_runs_the_torch_faces():
    """backend="torch" samples the non-centred funnel (a standard normal) through its torch face."""
    target = TARGETS["funnel-noncentred"]
    result = hmc.sample(target, np.zeros(target.dim), num_samples=300, num_warmup=200, step_size=0.5, num_steps=5,
                        num_chains=64, seed=0, backend="torch",
                        warn=False)
    assert np.all(np.abs(result.flat_samples().mean(axis=0)) < 0.1)
    assert np.all(np.abs(result.flat_samples().std(axis=0) - 1.0) < 0.1)


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _ks_statistic(draws, cdf):
    ordered = np.sort(draws)
    values = cdf(ordered)
    n = ordered.size
    return max(np.max(np.arange(1, n + 1) / n - values), np.max(values - np.arange(n) / n))


#: One marginal per target whose CDF is known in closed form.
MARGINAL_CDFS = {
    "gaussian": (1, lambda x: _normal_cdf((x - 1.0) / math.sqrt(2.0))),
    "funnel": (0, lambda v: _normal_cdf(v / 3.0)),
    "funnel-noncentred": (2, _normal_cdf),
    "mixture": (0, lambda x: 0.2 * _normal_cdf(x + 3.0) + 0.5 * _normal_cdf(x / math.sqrt(0.4))
                + 0.3 * _normal_cdf((x - 3.0) / math.sqrt(2.0))),
    "rosenbrock": (0, lambda x: _normal_cdf((x - 1.0) * math.sqrt(2.0 / 20.0))),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_exact_draws_match_exact_moments_and_marginal(name):
    target = TARGETS[name]
    n = 20_000
    draws = target.sample_exact(n, seed=11)
    np.testing.assert_array_equal(draws, target.sample_exact(n, seed=11))
    mean, cov = target.posterior_moments()
    sd = np.sqrt(np.diag(cov))
    # The means within 5 standard errors; sds within 15% (Rosenbrock's heavy tails), except the
    # centred funnel's x's: their kurtosis 3 e^{v_scale^2} = 2.4e4 makes a sample sd meaningless,
    # so there x e^{-v/2} is checked instead, which is N(0, 1) exactly.
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * sd / math.sqrt(n))
    checked = [0] if name == "funnel" else slice(None)
    assert np.all(np.abs(draws.std(axis=0)[checked] / sd[checked] - 1.0) < 0.15)
    if name == "funnel":
        whitened = draws[:, 1:] * np.exp(-0.5 * draws[:, :1])
        assert all(_ks_statistic(column, _normal_cdf) < 1.63 / math.sqrt(n) for column in whitened.T)
    if name in ("gaussian", "mixture", "funnel-noncentred"):  # light tails: the whole covariance
        np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.06 * sd.max() ** 2)
    dim, cdf = MARGINAL_CDFS[name]
    assert _ks_statistic(draws[:, dim], cdf) < 1.63 / math.sqrt(n)  # KS at the 1% level


def test_hybrid_rosenbrock_moments_equal_a_long_exact_run():
    """The moment recursion, covariances included, against 10^6 exact draws of a light-tailed
    instance (the paper's defaults make x_3 ~ x_1^4: too heavy for a tight check)."""
    target = HybridRosenbrock(n1=3, n2=2, mu=0.5, a=2.0, b=[[5.0, 2.0], [3.0, 4.0]])
    draws = target.sample_exact(1_000_000, seed=3)
    mean, cov = target.posterior_moments()
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5e-3)
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.02)  # fourth moments: ~0.5% standard errors


def _integrate_2d(target, low, high, num=801):
    """Trapezoid rule of exp(log p) on a (num x num) grid over [low, high]^2."""
    a = np.linspace(low[0], high[0], num)
    b = np.linspace(low[1], high[1], num)
    grid = np.stack(np.meshgrid(a, b, indexing="ij"), axis=-1)
    density = np.exp(target.log_prob_and_grad(grid)[0])
    return float(np.trapezoid(np.trapezoid(density, b, axis=1), a))


@pytest.mark.parametrize("target, low, high", [
    (GaussianMixture([0.5, 1.5], [[-1.0, 0.0], [2.0, 1.0]], [[[1.0, 0.2], [0.2, 0.5]], [[0.3, 0.0], [0.0, 0.8]]]),
     (-8.0, -6.0), (7.0, 6.0)),
    (Funnel(2, v_scale=1.0), (-7.0, -60.0), (7.0, 60.0)),
    (HybridRosenbrock(n1=2, n2=1, a=0.5, b=2.0), (-5.0, -5.0), (7.0, 40.0)),
])
def test_log_evidence_equals_quadrature(target, low, high):
    assert math.log(_integrate_2d(target, low, high)) == pytest.approx(target.log_evidence(), abs=2e-4)


def test_funnel_maps_noncentred_draws_to_funnel_draws():
    centred, easy = Funnel(5), Funnel(5, centred=False)
    np.testing.assert_allclose(easy.to_funnel(easy.sample_exact(100, seed=2)), centred.sample_exact(100, seed=2))
    z = _points(easy)
    x = easy.to_funnel(z)
    # Change of variables: log p_centred(x) + log|dx/dz| = log p_noncentred(z), |dx/dz| = v_scale e^{(d-1) v / 2}.
    log_jacobian = math.log(3.0) + 0.5 * 4 * x[:, 0]
    np.testing.assert_allclose(centred.log_prob_and_grad(x)[0] + log_jacobian, easy.log_prob_and_grad(z)[0])


def test_score_sees_a_missed_mode():
    mixture = GaussianMixture([0.5, 0.5], [[-4.0], [4.0]], [[[1.0]], [[1.0]]])
    draws = mixture.sample_exact(4000, seed=1)
    one_mode = draws[draws[:, 0] > 0]
    assert abs(score(draws, mixture).kl) < 0.05
    assert score(one_mode, mixture).kl > 0.5  # log 2 = 0.69 exactly: all the mass on one of two equal modes


@pytest.mark.parametrize("make, match", [
    (lambda: Funnel(1), "dim must be >= 2"),
    (lambda: Funnel(3, centred=1), "centred must be a bool"),
    (lambda: Funnel(3, v_scale=0.0), "v_scale"),
    (lambda: GaussianMixture([1.0, -1.0], [[0.0], [1.0]], [[[1.0]], [[1.0]]]), "weights must all be > 0"),
    (lambda: GaussianMixture([1.0], [[0.0, 1.0]], [[[1.0]]]), "covs must have shape"),
    (lambda: GaussianMixture([1.0], [[0.0]], [[[-1.0]]]), "positive definite"),
    (lambda: GaussianMixture(np.ones(65), np.zeros((65, 1)), np.ones((65, 1, 1))), "1 to 64"),
    (lambda: HybridRosenbrock(n1=1), "n1 must be >= 2"),
    (lambda: HybridRosenbrock(b=np.ones((3, 3))), r"b must be a scalar or have shape \(n2, n1 - 1\)"),
    (lambda: HybridRosenbrock(b=-1.0), "b must contain only values > 0"),
    (lambda: TARGETS["funnel"].log_prob_and_grad(np.zeros(3)), r"x must have shape \(\.\.\., 4\)"),
])
def test_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
