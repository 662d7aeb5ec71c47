"""HMC: known moments within Monte Carlo error for every backend, reproducibility, the C++ and
Numba chains equal draw for draw, adaptation, divergences, and bad input."""

import math
import warnings

import numpy as np
import pytest

import pyvi.targets
from pyvi import hmc
from pyvi.targets import Banana, Gaussian, LogDensity

BACKENDS = ["cpp", "numba", "numpy", "torch"]
CORRELATED = Gaussian([1.0, -1.0], [[1.0, 0.8], [0.8, 2.0]])


def _assert_moments(result, mean, cov, z=4.5):
    """Mean and covariance within z Monte Carlo standard errors, with SEs from the bulk ESS."""
    flat = result.flat_samples()
    ess = np.minimum(result.ess_bulk, len(flat))
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(flat.mean(axis=0) - mean), z * sd / np.sqrt(ess))
    centred = flat - mean
    for i in range(2):
        for j in range(2):
            product = centred[:, i] * centred[:, j]
            se = np.std(product) / math.sqrt(min(ess))
            assert abs(product.mean() - cov[i, j]) < z * se, (i, j, product.mean(), cov[i, j], se)


@pytest.mark.parametrize("backend", BACKENDS)
def test_correlated_gaussian_moments(backend):
    # Random path lengths: with a fixed L an adapted step can land near a resonance of the
    # Gaussian's periods and mix badly (a real HMC failure mode, not what this test is about).
    result = hmc.sample(CORRELATED, [0.0, 0.0], num_samples=2000, num_warmup=500, step_size=0.2, num_steps=10,
                        random_steps=True, num_chains=4, seed=11, backend=backend)
    assert result.samples.shape == (4, 2000, 2)
    assert result.num_divergent == 0
    assert np.all(result.rhat < 1.01)
    _assert_moments(result, CORRELATED.mean, CORRELATED.cov)


@pytest.mark.parametrize("backend", BACKENDS)
def test_banana_moments_match_exact(homework_banana, backend):
    num_samples = 2500 if backend == "numpy" else 10000
    result = hmc.sample(homework_banana, np.random.default_rng(0).normal(size=(4, 2)), num_samples=num_samples,
                        num_warmup=1000, step_size=0.05, num_steps=20, num_chains=4, adapt_step_size=False,
                        seed=5, backend=backend)
    assert result.num_divergent == 0
    assert np.all(result.rhat < 1.01)
    mean, cov = homework_banana.posterior_moments()
    _assert_moments(result, mean, cov)


def test_random_steps_draws_path_length_uniformly():
    result = hmc.sample(CORRELATED, [0.0, 0.0], num_samples=20000, num_warmup=0, step_size=0.1, num_steps=7,
                        random_steps=True, adapt_step_size=False, seed=3)
    counts = np.bincount(result.num_steps.ravel(), minlength=8)
    assert counts[0] == 0 and counts[1:].sum() == 20000
    expected = 20000 / 7
    assert np.all(np.abs(counts[1:] - expected) < 5 * math.sqrt(expected))
    fixed = hmc.sample(CORRELATED, [0.0, 0.0], num_samples=10, num_warmup=0, step_size=0.1, num_steps=7, seed=3)
    assert np.all(fixed.num_steps == 7)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("random_steps", [False, True])
@pytest.mark.parametrize("num_chains", [1, 3, 11])  # one chain, a partial group, a full group + rest
def test_cpp_and_numba_chains_are_identical(default_banana, backend, random_steps, num_chains):
    # warn=False: the backends are compared, not the runs (the adapted step diverges on the banana).
    kwargs = dict(num_samples=3000, num_warmup=1000, step_size=0.05, num_steps=30, num_chains=num_chains,
                  random_steps=random_steps, seed=2024, warn=False)
    initial = np.random.default_rng(num_chains).normal(size=(num_chains, 2))
    reference = hmc.sample(default_banana, initial, backend="cpp", num_threads=1, **kwargs)
    result = hmc.sample(default_banana, initial, backend=backend, **kwargs)
    for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
        np.testing.assert_array_equal(getattr(result, field), getattr(reference, field), err_msg=field)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_a_chain_does_not_depend_on_its_group(default_banana, backend):
    """Native backends integrate chains in groups; chain c's draws must not depend on the others:
    the first 3 of 11 chains (part of a full group) equal a 3-chain run (a partial group)."""
    initial = np.random.default_rng(0).normal(size=(11, 2))
    kwargs = dict(num_samples=500, num_warmup=500, step_size=0.05, num_steps=20, random_steps=True, seed=7,
                  backend=backend, warn=False)
    many = hmc.sample(default_banana, initial, num_chains=11, **kwargs)
    few = hmc.sample(default_banana, initial[:3], num_chains=3, **kwargs)
    one = hmc.sample(default_banana, initial[:1], num_chains=1, **kwargs)
    np.testing.assert_array_equal(many.samples[:3], few.samples)
    np.testing.assert_array_equal(many.samples[:1], one.samples)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_draws_whatever_the_threads(default_banana, backend):
    kwargs = dict(num_samples=200, num_warmup=100, step_size=0.05, num_steps=10, num_chains=3, seed=9, backend=backend,
                  warn=False)
    one = hmc.sample(default_banana, [1.0, 0.5], num_threads=1, **kwargs)
    two = hmc.sample(default_banana, [1.0, 0.5], num_threads=2, **kwargs)
    np.testing.assert_array_equal(one.samples, two.samples)
    other = hmc.sample(default_banana, [1.0, 0.5], num_threads=2, **{**kwargs, "seed": 10})
    assert not np.array_equal(one.samples, other.samples)
    # Chains use different streams.
    assert not np.array_equal(one.samples[0], one.samples[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dual_averaging_reaches_target_acceptance(backend):
    target = Gaussian(np.zeros(2), np.diag([1.0, 0.01]))  # stiff: the step must shrink
    result = hmc.sample(target, [0.5, 0.05], num_samples=2000, num_warmup=1000, step_size=1.0, num_steps=5,
                        num_chains=2, target_accept=0.8, seed=4, backend=backend)
    assert 0.7 < result.mean_accept_prob < 0.9
    assert np.all(result.step_size < 0.2)
    assert np.all(np.isfinite(result.samples))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step_size", [1e3, 1e150, 1e-300])
def test_absurd_step_sizes_never_give_nan(default_banana, backend, step_size):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = hmc.sample(default_banana, [1.0, 0.5], num_samples=50, num_warmup=0, step_size=step_size,
                            num_steps=5, adapt_step_size=False, seed=1, backend=backend)
    # Every transition diverges (and says so), or none does; 50 draws are too few for R-hat and ESS.
    assert [str(w.message)[:38] for w in caught] == (["50 of 50 transitions after warm-up div"] if step_size > 1 else [])
    assert all(w.category is hmc.HMCWarning for w in caught)
    assert np.all(np.isfinite(result.samples)) and np.all(np.isfinite(result.log_prob))
    assert np.all(np.isfinite(result.accept_prob))
    if step_size > 1:
        assert result.num_divergent == 50
        assert np.all(result.samples == [1.0, 0.5])  # everything rejected
        assert np.all(result.accept_prob == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptation_from_absurd_step_recovers(default_banana, backend):
    result = hmc.sample(default_banana, [1.0, 0.5], num_samples=500, num_warmup=500, step_size=1e6,
                        num_steps=10, seed=2, backend=backend, warn=False)
    assert np.all(np.isfinite(result.samples))
    assert result.mean_accept_prob > 0.5


def test_python_log_density_runs_on_numpy_backend_only():
    target = LogDensity(lambda x: -0.5 * float(x @ x), lambda x: -x, dim=2)
    result = hmc.sample(target, [0.0, 0.0], num_samples=3000, num_warmup=300, step_size=0.3, num_steps=5, seed=0,
                        random_steps=True, backend="numpy", num_chains=2)
    assert abs(result.flat_samples().mean()) < 0.1
    assert abs(result.flat_samples().var() - 1.0) < 0.1
    for backend in ("cpp", "numba"):
        with pytest.raises(TypeError, match=f"LogDensity cannot run on backend '{backend}'.*use backend='numpy'"):
            hmc.sample(target, [0.0, 0.0], 10, 10, 0.1, 5, backend=backend)


def test_result_summary_is_plain_numbers(default_banana):
    result = hmc.sample(default_banana, [1.0, 0.5], num_samples=100, num_warmup=100, step_size=0.05, num_steps=10,
                        num_chains=2, seed=0, warn=False)
    import json

    summary = json.loads(json.dumps(result.summary()))
    assert summary["num_chains"] == 2 and len(summary["rhat"]) == 2
    assert result.samples.shape == (2, 100, 2) and result.log_prob.shape == (2, 100)
    assert result.divergent.dtype == bool and result.num_steps.dtype == np.int32


def test_zero_samples_is_a_value_error(default_banana):
    """Issue #15 item 21: num_samples=0 gave an empty result with NaN acceptance; a run now keeps at
    least one draw per chain."""
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="num_samples must be >= 1, got 0"):
            hmc.sample(default_banana, [1.0, 0.5], num_samples=0, num_warmup=10, step_size=0.05, num_steps=10,
                       backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(initial=[np.nan, 0.0]), ValueError, "initial must contain only finite"),
        (dict(initial=[0.0, 0.0, 0.0]), ValueError, "initial must have shape"),
        (dict(initial=np.zeros((3, 2))), ValueError, "initial must have shape"),
        (dict(initial=[1e200, 0.0]), ValueError, "initial: the log density is not finite"),
        (dict(step_size=0.0), ValueError, "step_size"),
        (dict(step_size=-0.1), ValueError, "step_size"),
        (dict(step_size=np.nan), ValueError, "step_size"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(num_samples=-1), ValueError, "num_samples"),
        (dict(num_warmup=-5), ValueError, "num_warmup"),
        (dict(num_chains=0), ValueError, "num_chains"),
        (dict(num_samples=2.5), TypeError, "num_samples"),
        (dict(target_accept=1.0), ValueError, "target_accept"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(num_threads=0), ValueError, "num_threads"),
        (dict(random_steps="yes"), TypeError, "random_steps"),
    ],
)
def test_bad_input(default_banana, backend, overrides, error, match):
    kwargs = dict(initial=[1.0, 0.5], num_samples=10, num_warmup=10, step_size=0.05, num_steps=5, seed=0)
    kwargs.update(overrides)
    with pytest.raises(error, match=match):
        hmc.sample(default_banana, backend=backend, **kwargs)


def test_bad_backend_and_target(default_banana):
    with pytest.raises(ValueError, match="backend must be one of"):
        hmc.sample(default_banana, [1.0, 0.5], 10, 10, 0.05, 5, backend="jax")
    with pytest.raises(TypeError, match="target must have"):
        hmc.sample(object(), [1.0, 0.5], 10, 10, 0.05, 5)


def _gaussian(dim):
    a = np.random.default_rng(dim).normal(size=(dim, dim))
    return Gaussian(np.linspace(-1.0, 1.0, dim), a @ a.T + 0.5 * np.eye(dim))


#: One instance of every built-in target with native faces (fixed and run-time dimensions).
BUILT_IN_TARGETS = {"banana": Banana.default(), "gaussian-1d": _gaussian(1), "gaussian-2d": CORRELATED,
                    "gaussian-5d": _gaussian(5)}


@pytest.mark.parametrize("adapt", [False, True])
@pytest.mark.parametrize("random_steps", [False, True])
@pytest.mark.parametrize("num_chains", [1, 3, 17])
@pytest.mark.parametrize("name", sorted(BUILT_IN_TARGETS))
def test_cpp_and_numba_are_identical_on_every_built_in_target(name, num_chains, random_steps, adapt):
    """Issue #15 item 5: the 5-D Gaussian differed (two computations of log_norm one bit apart,
    amplified by the adaptation); now every backend gets the one value Gaussian computed."""
    target = BUILT_IN_TARGETS[name]
    assert all(getattr(type(target), face) is not getattr(pyvi.targets.Target, face)
               for face in ("cpp_target", "numba_target"))
    initial = 0.5 * np.random.default_rng(num_chains).normal(size=(num_chains, target.dim))
    kwargs = dict(num_samples=200, num_warmup=200, step_size=0.05 if name == "banana" else 0.2, num_steps=15,
                  num_chains=num_chains, random_steps=random_steps, adapt_step_size=adapt, seed=2025, warn=False)
    cpp = hmc.sample(target, initial, backend="cpp", num_threads=1, **kwargs)
    numba = hmc.sample(target, initial, backend="numba", num_threads=2, **kwargs)
    for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
        np.testing.assert_array_equal(getattr(numba, field), getattr(cpp, field), err_msg=field)
    x0, p0 = initial[0], np.linspace(-0.5, 0.5, target.dim)
    for got, expected in zip(hmc.leapfrog(target, x0, p0, 0.03, 40, backend="numba"),
                             hmc.leapfrog(target, x0, p0, 0.03, 40, backend="cpp")):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "overrides, match",
    [
        # Issue #15 item 3: num_warmup + num_samples overflowed int64 and cpp returned at once with
        # uninitialised arrays; items 14: counts beyond the native range were pybind11's
        # "incompatible function arguments".
        (dict(num_warmup=2**63 - 1), r"num_warmup \+ num_samples must be <= 2\*\*63 - 1"),
        (dict(num_warmup=2**62, num_samples=2**62), r"num_warmup \+ num_samples"),
        (dict(num_samples=2**64), r"num_samples must be <= 9223372036854775807"),
        (dict(num_warmup=2**63), r"num_warmup must be <= 9223372036854775807"),
        (dict(num_threads=2**40), r"num_threads must be <= 2147483647"),
        (dict(num_steps=2**31), r"num_steps must be <= 2147483647"),
        (dict(num_chains=2**63), r"num_chains must be <= 9223372036854775807"),
        (dict(num_samples=2**40, num_chains=2**30), r"num_chains \* num_samples \* dim"),
    ],
)
def test_counts_beyond_the_native_range_are_value_errors(default_banana, backend, overrides, match):
    kwargs = dict(initial=[1.0, 0.5], num_samples=10, num_warmup=10, step_size=0.05, num_steps=5, seed=0)
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=match):
        hmc.sample(default_banana, backend=backend, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_leapfrog_steps_beyond_int64_are_a_value_error(default_banana, backend):
    with pytest.raises(ValueError, match=r"num_steps must be <= 9223372036854775807"):
        hmc.leapfrog(default_banana, [0.0, 0.0], [0.0, 0.0], 0.1, 2**63, backend=backend)


def test_numba_backend_restores_the_thread_count(default_banana):
    import numba

    before = numba.get_num_threads()
    hmc.sample(default_banana, [1.0, 0.5], 10, 10, 0.05, 5, backend="numba", num_threads=1)
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="initial: the log density is not finite"):
        hmc.sample(default_banana, [1e200, 0.0], 10, 10, 0.05, 5, backend="numba", num_threads=1)
    assert numba.get_num_threads() == before
