"""The banana's range (issue #15 item 7): sigmas beyond [1e-50, 1e50] are refused with one clear
ValueError on every backend (they gave NaN, OverflowError or ZeroDivisionError by backend), within
it log p and its gradient are never NaN at a finite point (the gradient at (1e308, 0) was
[-inf, nan])."""

import math

import numpy as np
import pytest

from pyvi.targets import Banana
from pyvi.targets.banana import SIGMA_RANGE

Y = np.array([1.0, 2.0, 0.5])
BACKENDS = ["numpy", "cpp", "numba"]


def test_the_python_range_is_the_cores():
    from pyvi import _core

    assert tuple(_core.banana_sigma_range) == SIGMA_RANGE


@pytest.mark.parametrize("sigma", [1e-160, 1e-300, 1e200, 1e-51, 1e51, 5e-324])
@pytest.mark.parametrize("name", ["sigma_y", "sigma_theta"])
def test_sigmas_out_of_range_are_value_errors_everywhere(name, sigma):
    with pytest.raises(ValueError, match=rf"{name} must lie in \[1e-50, 1e50\]"):
        Banana(Y, **{name: sigma})
    from pyvi import _core

    kwargs = dict(num_data=3.0, mean_y=1.0, ss_y=1.0, sigma_y=2.0, sigma_theta=1.0)
    with pytest.raises(ValueError, match=rf"{name} must lie in \[1e-50, 1e50\]"):
        _core.BananaTarget(**{**kwargs, name: sigma})
    torch = pytest.importorskip("torch")
    import pyvi.ops  # noqa: F401  (registers torch.ops.pyvi)

    args = [3.0, 1.0, 1.0, 2.0, 1.0]
    args[3 if name == "sigma_y" else 4] = sigma
    with pytest.raises(ValueError, match=rf"{name} must lie in \[1e-50, 1e50\]"):
        torch.ops.pyvi.banana_log_joint(torch.zeros(1, 2, dtype=torch.float64), *args)


@pytest.mark.parametrize("sigma", [SIGMA_RANGE[0], SIGMA_RANGE[1]])
@pytest.mark.parametrize("name", ["sigma_y", "sigma_theta"])
def test_the_ends_of_the_range_give_numbers(name, sigma):
    banana = Banana(Y, **{name: sigma})
    assert not math.isnan(banana.log_evidence())
    points = np.array([[0.5, 0.8], [1e10, -1e5], [-3.0, 1e154]])
    for backend in BACKENDS:
        log_prob, grad = banana.log_prob_and_grad(points, backend=backend)
        assert not np.isnan(log_prob).any() and not np.isnan(grad).any(), (backend, log_prob, grad)


@pytest.mark.parametrize("point", [(1e308, 0.0), (-1e308, 0.0), (1e308, 1e200), (0.0, 1e160), (1e300, -1e300)])
def test_gradient_far_out_is_exact_or_infinite_never_nan(point):
    banana = Banana.default()
    results = [banana.log_prob_and_grad(np.array(point), backend=backend) for backend in BACKENDS]
    torch = pytest.importorskip("torch")
    log_prob, grad = banana.fused_log_joint()(torch.tensor([point], dtype=torch.float64))
    results.append((float(log_prob[0]), grad[0].numpy()))
    for log_prob, grad in results:
        assert not np.isnan(log_prob) and not np.isnan(grad).any(), (point, results)
    # Every backend gives the same values (the repair is one formula).
    for log_prob, grad in results[1:]:
        np.testing.assert_array_equal(grad, results[0][1])
    if point == (1e308, 0.0):  # d/dtheta2 is 2 theta2 (...) - theta2 / sigma_theta^2 = 0 there
        assert results[0][1][0] == -np.inf and results[0][1][1] == 0.0


def test_data_too_spread_for_sigma_y_is_a_value_error():
    with pytest.raises(ValueError, match="too large for sigma_y|overflows"):
        Banana(np.array([-1e200, 1e200]), sigma_y=1e-50)
