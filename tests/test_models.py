"""pyvi.models: the logistic regression's three implementations agree, and its gradient is exact."""

import numpy as np
import pytest
import torch

from pyvi.models import LogisticRegression, breast_cancer, logistic_log_joint


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    return LogisticRegression.breast_cancer()


def _points(dim: int, num: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    # From near the posterior (|eta| of a few) to far out (|eta| in the hundreds: softplus saturates).
    return rng.normal(size=(num, dim)) * np.linspace(0.05, 10.0, num)[:, None]


def test_breast_cancer_data_is_standardised_with_an_intercept():
    X, y = breast_cancer()
    assert X.shape == (569, 31) and y.shape == (569,) and X.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(X[:, 0], 1.0)
    np.testing.assert_allclose(X[:, 1:].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X[:, 1:].std(axis=0), 1.0, rtol=1e-12)
    assert set(np.unique(y)) == {0.0, 1.0} and y.sum() == 357  # 357 benign, 212 malignant


def test_log_joint_against_a_direct_sum(model):
    """The log joint term by term (log(1 + e^eta) by numpy's logaddexp), summed exactly (fsum)."""
    from math import fsum, log, pi

    beta = _points(model.dim)[2]
    eta = model.X @ beta
    terms = [yi * t - (np.logaddexp(0.0, t)) for yi, t in zip(model.y, eta)]
    terms += [-0.5 * b * b - 0.5 * log(2 * pi) for b in beta]
    assert model.log_prob_and_grad(beta)[0] == pytest.approx(fsum(terms), rel=1e-13)


def test_gradient_is_exact(model):
    """numpy's analytic gradient against torch autograd of an independent formulation (float64),
    and against central finite differences."""
    for beta in _points(model.dim):
        log_prob, grad = model.log_prob_and_grad(beta)
        theta = torch.tensor(beta, requires_grad=True)
        eta = torch.tensor(model.X) @ theta
        labels = torch.tensor(model.y)
        reference = (torch.nn.functional.logsigmoid(eta) * labels + torch.nn.functional.logsigmoid(-eta) * (1 - labels)).sum()
        reference = reference - 0.5 * (theta * theta).sum() - 0.5 * model.dim * np.log(2 * np.pi)
        reference.backward()
        assert log_prob == pytest.approx(float(reference.detach()), rel=1e-12)
        np.testing.assert_allclose(grad, theta.grad.numpy(), rtol=1e-10, atol=1e-10 * np.abs(grad).max())
    beta = _points(model.dim)[1]
    h = 1e-6
    numeric = np.array([(model.log_prob_and_grad(beta + h * e)[0] - model.log_prob_and_grad(beta - h * e)[0]) / (2 * h)
                        for e in np.eye(model.dim)])
    np.testing.assert_allclose(model.log_prob_and_grad(beta)[1], numeric, rtol=1e-6, atol=1e-6)


def test_numba_function_torch_and_numpy_agree(model):
    log_density = model.torch_log_prob()
    points = _points(model.dim)
    log_prob, grad = model.log_prob_and_grad(points)
    assert log_prob.shape == (len(points),) and grad.shape == points.shape
    for k, beta in enumerate(points):
        numba_grad = np.empty(model.dim)
        numba_log_prob = logistic_log_joint(beta, numba_grad, *model.data)
        assert numba_log_prob == pytest.approx(log_prob[k], rel=1e-13)
        np.testing.assert_allclose(numba_grad, grad[k], rtol=1e-12, atol=1e-12 * np.abs(grad[k]).max())
    theta = torch.tensor(points, requires_grad=True)
    torch_log_prob = log_density(theta)
    torch_log_prob.sum().backward()
    np.testing.assert_allclose(torch_log_prob.detach().numpy(), log_prob, rtol=1e-13)
    np.testing.assert_allclose(theta.grad.numpy(), grad, rtol=1e-10, atol=1e-10 * np.abs(grad).max())


@pytest.mark.parametrize("eta", [800.0, -800.0, 708.0, -708.0, 745.5, 1e6])
def test_numba_function_at_extreme_eta(model, eta):
    """Far out, where exp(-|eta|) underflows (or reaches the cutoff of the numba function's own exp):
    finite value and gradient, the numpy reference's."""
    beta = np.zeros(model.dim)
    beta[0] = eta  # the intercept: eta = beta_0 in every row
    grad = np.empty(model.dim)
    log_prob = logistic_log_joint(beta, grad, *model.data)
    reference, reference_grad = model.log_prob_and_grad(beta)
    assert np.isfinite(log_prob) and np.all(np.isfinite(grad))
    assert log_prob == pytest.approx(reference, rel=1e-15)
    np.testing.assert_allclose(grad, reference_grad, rtol=1e-12, atol=1e-12 * np.abs(reference_grad).max())


def test_numba_function_exp_and_log1p_against_libm():
    """The numba function's own exp(-a) and log1p(e) (polynomials, so that its loops vectorise)
    stay within 2 ulp of libm's, over the whole range."""
    from pyvi.models.logistic_regression import _exp_neg_reduced, _log1p_unit, _INV_LN2, _LN2_HI, _LN2_LO

    a = np.concatenate([np.linspace(0.0, 40.0, 20001), np.random.default_rng(0).uniform(0.0, 708.0, 20000)])
    for value in a:
        k = int(value * _INV_LN2 + 0.5)
        exp_neg = _exp_neg_reduced((value - k * _LN2_HI) - k * _LN2_LO) * 2.0**-k
        assert abs(exp_neg - np.exp(-value)) <= 2 * np.spacing(np.exp(-value)), value
        assert abs(_log1p_unit(exp_neg) - np.log1p(exp_neg)) <= 2 * np.spacing(np.log1p(exp_neg)), value


def test_prior_scale(model):
    wide = LogisticRegression(model.X, model.y, prior_scale=2.0)
    beta = _points(model.dim)[0]
    difference = wide.log_prob_and_grad(beta)[0] - model.log_prob_and_grad(beta)[0]
    # log N(b; 0, 4) - log N(b; 0, 1) summed over coefficients.
    expected = np.sum(-np.log(2.0) - beta**2 / 8 + beta**2 / 2)
    assert difference == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("X, y, prior_scale, error, match", [
    (np.ones((3, 2)), np.array([0.0, 1.0]), 1.0, ValueError, r"y must have shape \(3,\)"),
    (np.ones((3, 2)), np.array([0.0, 1.0, 0.5]), 1.0, ValueError, "labels 0 and 1"),
    (np.ones(3), np.array([0.0, 1.0, 1.0]), 1.0, ValueError, "X must be a 2-D array"),
    (np.ones((0, 2)), np.ones(0), 1.0, ValueError, "at least one row"),
    (np.full((3, 2), np.nan), np.array([0.0, 1.0, 1.0]), 1.0, ValueError, "X must contain only finite"),
    (np.ones((3, 2)), np.array([0.0, 1.0, 1.0]), 0.0, ValueError, "prior_scale must be a finite number > 0"),
    (np.ones((3, 2)), np.array([0.0, 1.0, 1.0]), "1", TypeError, "prior_scale must be a real number"),
])
def test_bad_input(X, y, prior_scale, error, match):
    with pytest.raises(error, match=match):
        LogisticRegression(X, y, prior_scale=prior_scale)


def test_bad_points(model):
    with pytest.raises(ValueError, match=r"beta must have shape \(\.\.\., 31\)"):
        model.log_prob_and_grad(np.zeros(30))
