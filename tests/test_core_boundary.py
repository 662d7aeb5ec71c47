"""Hypothesis on pyvi._core's boundary: any input gives a result or a clean ValueError/TypeError,
never a crash, a hang or a NaN draw."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pyvi import _core

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
REASONABLE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
ARRAYS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), elements=FLOATS)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _banana():
    return _core.BananaTarget(100, 1.1, 365.0, 2.0, 1.0)


@SETTINGS
@given(num_data=FLOATS, mean_y=FLOATS, ss_y=FLOATS, sigma_y=FLOATS, sigma_theta=FLOATS)
def test_banana_target_constructor(num_data, mean_y, ss_y, sigma_y, sigma_theta):
    try:
        target = _core.BananaTarget(num_data, mean_y, ss_y, sigma_y, sigma_theta)
    except ValueError:
        return
    assert target.dim == 2 and np.isfinite(target.mean_y)


@SETTINGS
@given(x=ARRAYS)
def test_log_prob_and_grad_any_array(x):
    try:
        log_prob, grad = _core.log_prob_and_grad(_banana(), x)
    except ValueError:
        return
    assert np.all(np.isfinite(x))
    assert np.shape(grad)[-1] == 2


@SETTINGS
@given(mean=ARRAYS, precision=ARRAYS, log_norm=FLOATS)
def test_gaussian_target_constructor(mean, precision, log_norm):
    try:
        target = _core.GaussianTarget(mean, precision, log_norm)
    except ValueError:
        return
    assert target.log_norm == log_norm and np.isfinite(target.log_norm)


@SETTINGS
@given(
    initial=hnp.arrays(np.float64, st.tuples(st.integers(0, 3), st.integers(0, 3)), elements=FLOATS),
    num_samples=st.integers(-2, 20),
    num_warmup=st.integers(-2, 20),
    step_size=FLOATS,
    num_steps=st.integers(-1, 20),
    target_accept=FLOATS,
    seed=st.integers(0, 2**64 - 1),
    num_threads=st.integers(-1, 3),
    random_steps=st.booleans(),
    adapt=st.booleans(),
)
def test_hmc_any_arguments(initial, num_samples, num_warmup, step_size, num_steps, target_accept, seed, num_threads,
                           random_steps, adapt):
    try:
        out = _core.hmc(_banana(), initial, num_samples, num_warmup, step_size, num_steps, random_steps, adapt,
                        target_accept, 1000.0, seed, num_threads)
    except ValueError:
        return
    assert out["samples"].shape == (initial.shape[0], num_samples, 2)
    assert np.all(np.isfinite(out["samples"])) and np.all(np.isfinite(out["accept_prob"]))


@SETTINGS
@given(
    position=hnp.arrays(np.float64, st.integers(0, 3), elements=REASONABLE),
    momentum=hnp.arrays(np.float64, st.integers(0, 3), elements=REASONABLE),
    step_size=FLOATS,
    num_steps=st.integers(-1, 50),
)
def test_leapfrog_any_arguments(position, momentum, step_size, num_steps):
    try:
        x, p, log_prob = _core.leapfrog(_banana(), position, momentum, step_size, num_steps)
    except ValueError:
        return
    assert x.shape == p.shape == (2,)


def test_step_total_beyond_int64_is_a_value_error():
    # Issue #15 item 3: num_warmup + num_samples wrapped around and the loop never ran.
    import pytest

    with pytest.raises(ValueError, match=r"num_warmup \+ num_samples must be < 2\*\*63"):
        _core.hmc(_banana(), np.zeros((1, 2)), 10, 2**63 - 1, 0.1, 1, False, False, 0.8, 1000.0, 0, 1)


def test_wrong_types_are_type_errors():
    import pytest

    with pytest.raises(TypeError):
        _core.hmc("banana", np.zeros((1, 2)), 1, 1, 0.1, 1, False, False, 0.8, 1000.0, 0, 1)
    with pytest.raises(TypeError):
        _core.hmc(_banana(), np.zeros((1, 2)), 1, 1, 0.1, 1, False, False, 0.8, 1000.0, -1, 1)
    with pytest.raises(TypeError):
        _core.log_prob_and_grad(_banana(), "abc")
