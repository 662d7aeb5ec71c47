"""The leapfrog integrator against physics: the harmonic oscillator's exact discrete solution,
second-order energy conservation, time reversibility; every backend."""

import math

import numpy as np
import pytest

from pyvi.hmc import leapfrog
from pyvi.targets import Banana, Gaussian

BACKENDS = ["cpp", "numba", "numpy", "torch"]


def _energy(target, x, p):
    return -target.log_prob_and_grad(x)[0] + 0.5 * float(p @ p)


@pytest.mark.parametrize("backend", BACKENDS)
def test_harmonic_oscillator_exact_end_state(backend):
    """For H = |x|^2/2 + |p|^2/2 one leapfrog step is the linear map
    M = [[1 - e^2/2, e], [-e (1 - e^2/4), 1 - e^2/2]]; L steps are M^L, and within O(e^2) of the
    true flow x(t) = x0 cos t + p0 sin t."""
    eps, steps = 0.01, 314
    target = Gaussian(np.zeros(3), np.eye(3))
    x0, p0 = np.array([1.0, -0.5, 2.0]), np.array([0.3, 0.7, -1.0])
    x, p, _ = leapfrog(target, x0, p0, eps, steps, backend=backend)
    one_step = np.array([[1 - eps**2 / 2, eps], [-eps * (1 - eps**2 / 4), 1 - eps**2 / 2]])
    exact = np.linalg.matrix_power(one_step, steps) @ np.stack([x0, p0])
    np.testing.assert_allclose(x, exact[0], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(p, exact[1], rtol=1e-11, atol=1e-12)
    t = eps * steps
    np.testing.assert_allclose(x, x0 * math.cos(t) + p0 * math.sin(t), atol=5 * eps**2 * t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_error_is_second_order(backend):
    """Halving the step at fixed integration time divides the energy error by ~4 (banana target)."""
    banana = Banana.default()
    x0, p0 = np.array([0.3, 0.6]), np.array([0.4, -0.8])
    errors = []
    for eps in (0.02, 0.01, 0.005):
        x, p, _ = leapfrog(banana, x0, p0, eps, round(0.4 / eps), backend=backend)
        errors.append(abs(_energy(banana, x, p) - _energy(banana, x0, p0)))
    assert errors[0] < 0.05
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.0 < coarse / fine < 5.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_reversibility(backend):
    banana = Banana.default()
    x0, p0 = np.array([-0.2, 0.9]), np.array([1.1, 0.3])
    x, p, _ = leapfrog(banana, x0, p0, 0.01, 200, backend=backend)
    x_back, p_back, _ = leapfrog(banana, x, -p, 0.01, 200, backend=backend)
    np.testing.assert_allclose(x_back, x0, atol=1e-10)
    np.testing.assert_allclose(-p_back, p0, atol=1e-10)


def test_backends_agree_to_the_bit():
    banana = Banana.default()
    results = [leapfrog(banana, [0.5, 0.5], [0.1, -0.2], 0.03, 100, backend=b) for b in ("cpp", "numba")]
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_zero_steps_is_identity():
    x, p, log_prob = leapfrog(Banana.default(), [0.5, 0.5], [0.1, -0.2], 0.03, 0)
    np.testing.assert_array_equal(x, [0.5, 0.5])
    np.testing.assert_array_equal(p, [0.1, -0.2])
    assert log_prob == Banana.default().log_prob([0.5, 0.5])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "args, error, match",
    [
        (([0.0], [0.0, 0.0], 0.1, 1), ValueError, "position must have shape"),
        (([0.0, 0.0], [0.0], 0.1, 1), ValueError, "momentum must have shape"),
        (([np.nan, 0.0], [0.0, 0.0], 0.1, 1), ValueError, "position must contain only finite"),
        (([0.0, 0.0], [0.0, 0.0], 0.0, 1), ValueError, "step_size"),
        (([0.0, 0.0], [0.0, 0.0], 0.1, -1), ValueError, "num_steps"),
        (([0.0, 0.0], [0.0, 0.0], 0.1, 1.5), TypeError, "num_steps"),
    ],
)
def test_bad_input(backend, args, error, match):
    with pytest.raises(error, match=match):
        leapfrog(Banana.default(), *args, backend=backend)
