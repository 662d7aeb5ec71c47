"""User targets (pyvi.targets.NumbaTarget, CTarget, LogDensity) on the HMC backends that take them:
moments within Monte Carlo error, bit-for-bit agreement of cpp and numba (and with the built-in
targets where the arithmetic is the same), thread-count independence, and bad input: wrong
signatures and return types, non-finite values, exceptions inside user code, dimension mismatches,
null pointers.

The user functions are module-level and ``cache=True``: each costs one compilation of the Numba
sampler (seconds), which numba keeps on disk for the next run. The banana is pyvi.models'
worked example (``user_banana_target``, which bench/bench_user_targets.py times too). One function, ``gaussian``, serves
both the moment tests and the fault tests (its ``fault`` argument), so that the two share it.
"""

import ctypes
import math
import re
import shutil
import subprocess

import numba
import numpy as np
import pytest
import torch

from pyvi import hmc, vi
from pyvi.flows import RealNVP
from pyvi.models import LogisticRegression, logistic_log_joint, user_banana_target
from pyvi.targets import Banana, CTarget, Gaussian, LogDensity, NumbaTarget

# -- the user's functions ------------------------------------------------------------------------


#: What gaussian() does beyond ``radius`` (|x| > radius).
FAULTS = {"none": 0, "nan": 1, "inf": 2, "nan-gradient": 3, "raise": 4}


@numba.njit(cache=True)
def gaussian(x, grad, mean, precision, log_norm, fault, radius):
    """log N(x; mean, precision^-1), in the arithmetic of pyvi's own Gaussian; beyond ``radius`` it
    misbehaves as ``fault`` says (FAULTS)."""
    d = x.shape[0]
    quad = 0.0
    norm = 0.0
    for i in range(d):
        row = 0.0
        for j in range(d):
            row += precision[i, j] * (x[j] - mean[j])
        grad[i] = -row
        quad += (x[i] - mean[i]) * row
        norm += x[i] * x[i]
    value = log_norm - 0.5 * quad
    if fault != 0 and norm > radius * radius:
        if fault == 1:
            return np.nan
        if fault == 2:
            return np.inf
        if fault == 3:
            grad[0] = np.nan
        if fault == 4:
            raise ValueError("x left the region")
    return value


CORRELATED = Gaussian([1.0, -1.0, 0.5, 0.0, 2.0],
                      0.5 * np.eye(5) + 0.5 * np.full((5, 5), 0.6) + np.diag([0.0, 0.5, 1.0, 0.2, 0.3]))


def _gaussian_target(fault: str = "none", radius: float = 0.0) -> NumbaTarget:
    g = CORRELATED
    return NumbaTarget(gaussian, 5, data=(g.mean, g.precision, g.log_norm, FAULTS[fault], radius))


@pytest.fixture(scope="module")
def user_banana(default_banana) -> NumbaTarget:
    return user_banana_target(default_banana)


@pytest.fixture(scope="module")
def user_gaussian() -> NumbaTarget:
    return _gaussian_target()


# -- a C target, compiled here by the system's compiler ------------------------------------------

C_SOURCE = r"""
#include <stdint.h>
/* user_data: num_data, mean_y, lik_precision, prior_precision, log_norm (BananaParams) */
double banana(const double* x, double* grad, int64_t dim, void* user_data) {
  const double* p = (const double*)user_data;
  double t1 = x[0], t2 = x[1];
  double residual = t1 + t2 * t2 - p[1];
  double dlik_dr = -p[0] * p[2] * residual;
  grad[0] = dlik_dr - p[3] * t1;
  grad[1] = 2.0 * t2 * dlik_dr - p[3] * t2;
  return p[4] + 0.5 * dlik_dr * residual - 0.5 * p[3] * (t1 * t1 + t2 * t2);
}
/* user_data: log_norm, mean (dim), precision (dim x dim, row-major) */
double gaussian(const double* x, double* grad, int64_t dim, void* user_data) {
  const double* mean = (const double*)user_data + 1;
  const double* precision = mean + dim;
  double quad = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    double row = 0.0;
    for (int64_t j = 0; j < dim; ++j) row += precision[i * dim + j] * (x[j] - mean[j]);
    grad[i] = -row;
    quad += (x[i] - mean[i]) * row;
  }
  return ((const double*)user_data)[0] - 0.5 * quad;
}
"""


@pytest.fixture(scope="module")
def c_library(tmp_path_factory):
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    folder = tmp_path_factory.mktemp("c_target")
    (folder / "targets.c").write_text(C_SOURCE)
    # No contraction into FMAs: the same arithmetic as pyvi's own targets, so the same draws.
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-ffp-contract=off", str(folder / "targets.c"), "-o",
                    str(folder / "targets.so")], check=True)
    return ctypes.CDLL(str(folder / "targets.so"))


def _c_address(library, name: str) -> int:
    return ctypes.cast(getattr(library, name), ctypes.c_void_p).value


@pytest.fixture(scope="module")
def c_banana(c_library, default_banana) -> CTarget:
    return CTarget(_c_address(c_library, "banana"), 2, user_data=np.array(tuple(default_banana.numba_target())))


@pytest.fixture(scope="module")
def c_gaussian(c_library) -> CTarget:
    block = np.concatenate([[CORRELATED.log_norm], CORRELATED.mean, CORRELATED.precision.ravel()])
    return CTarget(_c_address(c_library, "gaussian"), 5, user_data=block)


# -- moments -------------------------------------------------------------------------------------


def _assert_moments(result, mean, cov, z=4.5):
    """Every mean and covariance entry within z Monte Carlo standard errors (from the bulk ESS)."""
    flat = result.flat_samples()
    ess = np.minimum(result.ess_bulk, len(flat))
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(flat.mean(axis=0) - mean), z * sd / np.sqrt(ess))
    centred = flat - mean
    for i in range(len(mean)):
        for j in range(i + 1):
            product = centred[:, i] * centred[:, j]
            se = np.std(product) / math.sqrt(min(ess[i], ess[j]))
            assert abs(product.mean() - cov[i, j]) < z * se, (i, j, product.mean(), cov[i, j], se)


def _numpy_gaussian() -> LogDensity:
    g = CORRELATED
    return LogDensity(lambda x: g.log_prob_and_grad(x)[0], lambda x: g.log_prob_and_grad(x)[1], dim=5)


@pytest.mark.parametrize("kind, backend", [("numba", "numba"), ("numba", "cpp"), ("c", "cpp"), ("python", "numpy")])
def test_correlated_gaussian_moments(kind, backend, request):
    target = {"numba": lambda: request.getfixturevalue("user_gaussian"), "c": lambda: request.getfixturevalue("c_gaussian"),
              "python": _numpy_gaussian}[kind]()
    num_samples = 1500 if backend == "numpy" else 4000
    result = hmc.sample(target, np.zeros(5), num_samples=num_samples, num_warmup=500, step_size=0.2, num_steps=10,
                        random_steps=True, num_chains=4, seed=11, backend=backend)
    assert result.num_divergent == 0 and np.all(result.rhat < 1.02)
    _assert_moments(result, CORRELATED.mean, CORRELATED.cov)


@pytest.mark.parametrize("kind, backend", [("numba", "numba"), ("numba", "cpp"), ("c", "cpp"), ("python", "numpy")])
def test_banana_moments_match_exact(homework_banana, kind, backend, c_library):
    params = tuple(homework_banana.numba_target())
    if kind == "numba":
        target = user_banana_target(homework_banana)
    elif kind == "c":
        target = CTarget(_c_address(c_library, "banana"), 2, user_data=np.array(params))
    else:
        face = user_banana_target(homework_banana)
        target = LogDensity(lambda x: face.log_prob_and_grad(x)[0], lambda x: face.log_prob_and_grad(x)[1], dim=2)
    num_samples = 2500 if backend == "numpy" else 10000
    result = hmc.sample(target, np.random.default_rng(0).normal(size=(4, 2)), num_samples=num_samples, num_warmup=1000,
                        step_size=0.05, num_steps=20, num_chains=4, adapt_step_size=False, seed=5, backend=backend)
    assert result.num_divergent == 0 and np.all(result.rhat < 1.01)
    _assert_moments(result, *homework_banana.posterior_moments())


# -- bit for bit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("random_steps", [False, True])
@pytest.mark.parametrize("num_chains", [1, 11])
def test_user_banana_gives_the_same_draws_on_cpp_and_numba_and_as_the_built_in(user_banana, c_banana, default_banana,
                                                                              random_steps, num_chains):
    """The same arithmetic gives the same draws: the user's njit banana inlined into the Numba
    sampler, called through the cfunc pointer by the C++ sampler, the C banana through its pointer,
    and pyvi's own banana on both backends."""
    kwargs = dict(num_samples=1000, num_warmup=500, step_size=0.05, num_steps=30, num_chains=num_chains,
                  random_steps=random_steps, seed=2024, warn=False)  # (draws, not mixing)
    initial = np.random.default_rng(num_chains).normal(size=(num_chains, 2))
    reference = hmc.sample(default_banana, initial, backend="cpp", **kwargs)
    for target, backend in [(user_banana, "numba"), (user_banana, "cpp"), (c_banana, "cpp")]:
        result = hmc.sample(target, initial, backend=backend, **kwargs)
        for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
            np.testing.assert_array_equal(getattr(result, field), getattr(reference, field), err_msg=(backend, field))


def test_user_gaussian_gives_the_same_draws_as_the_built_in(user_gaussian, c_gaussian):
    """pyvi's Gaussian runs one chain at a time in place; the 5-D user function has a fixed dimension
    (on numba, and on cpp through FixedDimCallback) and runs in groups of 8: the draws are the same
    all the same."""
    kwargs = dict(num_samples=300, num_warmup=300, step_size=0.2, num_steps=10, random_steps=True, num_chains=9,
                  seed=3)
    initial = np.random.default_rng(1).normal(size=(9, 5))
    reference = hmc.sample(CORRELATED, initial, backend="cpp", **kwargs).samples
    for target, backend in [(user_gaussian, "numba"), (user_gaussian, "cpp"), (c_gaussian, "cpp")]:
        np.testing.assert_array_equal(hmc.sample(target, initial, backend=backend, **kwargs).samples, reference)


@pytest.mark.parametrize("dim", [1, 8, 9])
def test_user_targets_on_cpp_either_side_of_the_fixed_dimensions(c_library, dim):
    """The C++ sampler runs a user pointer of dimension <= 8 with the dimension fixed at compile
    time, in groups of 8 chains, and larger ones with a run-time dimension: the same draws as the
    built-in Gaussian either way, for a NumbaTarget (its cfunc) and a CTarget."""
    rng = np.random.default_rng(dim)
    factor = rng.normal(size=(dim, dim))
    target = Gaussian(rng.normal(size=dim), factor @ factor.T + dim * np.eye(dim))
    block = np.concatenate([[target.log_norm], target.mean, target.precision.ravel()])
    user = [NumbaTarget(gaussian, dim, data=(target.mean, target.precision, target.log_norm, 0, 0.0)),
            CTarget(_c_address(c_library, "gaussian"), dim, user_data=block)]
    kwargs = dict(num_samples=100, num_warmup=100, step_size=0.3, num_steps=8, random_steps=True, num_chains=11,
                  seed=dim, backend="cpp", warn=False)
    initial = rng.normal(size=(11, dim))
    reference = hmc.sample(target, initial, **kwargs)
    for each in user:
        result = hmc.sample(each, initial, **kwargs)
        for field in ("samples", "log_prob", "accept_prob", "num_steps", "step_size"):
            np.testing.assert_array_equal(getattr(result, field), getattr(reference, field), err_msg=(each, field))


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_draws_do_not_depend_on_the_thread_count(user_gaussian, backend):
    kwargs = dict(num_samples=200, num_warmup=100, step_size=0.2, num_steps=10, num_chains=11, seed=9, backend=backend,
                  warn=False)
    one = hmc.sample(user_gaussian, np.zeros(5), num_threads=1, **kwargs)
    two = hmc.sample(user_gaussian, np.zeros(5), num_threads=2, **kwargs)
    np.testing.assert_array_equal(one.samples, two.samples)
    assert not np.array_equal(one.samples[0], one.samples[1])


def test_leapfrog_on_every_backend(user_gaussian):
    start = np.linspace(-1.0, 1.0, 5), np.linspace(0.5, -0.5, 5)
    ends = [hmc.leapfrog(user_gaussian, *start, 0.1, 25, backend=backend) for backend in ("cpp", "numba")]
    reference = hmc.leapfrog(CORRELATED, *start, 0.1, 25, backend="cpp")
    for end in ends:
        for value, expected in zip(end, reference):
            np.testing.assert_array_equal(value, expected)
    numpy_end = hmc.leapfrog(user_gaussian, *start, 0.1, 25, backend="numpy")
    np.testing.assert_allclose(numpy_end[0], reference[0], rtol=1e-12)


# -- the logistic regression -------------------------------------------------------------------------


def test_logistic_regression_posterior_means_agree_across_backends():
    """A model beyond the demos, 31-D: the NumbaTarget of pyvi.models on cpp and numba (the same
    draws, and the same as the model's own native faces), and numpy on the model's vectorised numpy
    density (other random numbers) agree on the posterior means within Monte Carlo error."""
    model = LogisticRegression.breast_cancer()
    target = NumbaTarget(logistic_log_joint, model.dim, data=model.data)
    kwargs = dict(num_warmup=200, step_size=0.01, num_steps=25, num_chains=4, seed=1, warn=False)  # (checked here)
    initial = np.zeros(model.dim)
    short = [hmc.sample(t, initial, num_samples=20, backend=backend, **kwargs).samples
             for t, backend in ((target, "numba"), (target, "cpp"), (model, "cpp"), (model, "numba"))]
    for draws in short[1:]:
        np.testing.assert_array_equal(draws, short[0])
    native = hmc.sample(target, initial, num_samples=1500, backend="cpp", **kwargs)
    reference = hmc.sample(model, initial, num_samples=1000, backend="numpy", **kwargs)
    for result in (native, reference):
        assert result.num_divergent == 0 and np.all(result.rhat < 1.1)
    se = np.hypot(native.flat_samples().std(axis=0) / np.sqrt(native.ess_bulk),
                  reference.flat_samples().std(axis=0) / np.sqrt(reference.ess_bulk))
    difference = np.abs(native.flat_samples().mean(axis=0) - reference.flat_samples().mean(axis=0))
    np.testing.assert_array_less(difference, 5 * se)


# -- non-finite values and exceptions from user code ---------------------------------------------


@pytest.mark.parametrize("fault", ["nan", "inf", "nan-gradient"])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_non_finite_values_are_rejected_divergent_transitions(fault, backend):
    """Beyond |x| = 2.5 the function returns NaN, +inf, or a NaN gradient with a finite log p: every
    transition that ends there (or, for the gradient, passes there) is rejected and divergent;
    draws and their log p stay finite."""
    target = _gaussian_target(fault, radius=2.5)
    result = hmc.sample(target, np.zeros(5), num_samples=300, num_warmup=100, step_size=0.3, num_steps=10,
                        num_chains=2, adapt_step_size=False, seed=4, backend=backend, warn=False)
    assert result.num_divergent > 0
    assert np.isfinite(result.samples).all() and np.isfinite(result.log_prob).all()
    assert np.all(np.linalg.norm(result.samples, axis=-1) <= 2.5)
    rejected = result.accept_prob[result.divergent]
    assert np.all(rejected == 0.0)


@pytest.mark.parametrize("fault, quantity", [("nan", "log density"), ("inf", "log density"),
                                             ("nan-gradient", "gradient of the log density")])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
@pytest.mark.parametrize("kernel", ["hmc", "nuts"])
def test_a_start_where_log_p_or_its_gradient_is_not_finite(fault, quantity, backend, kernel):
    target = _gaussian_target(fault, radius=2.5)
    initial = np.zeros((3, 5))
    initial[2, 0] = 3.0
    steps = dict(step_size=0.1, num_steps=5) if kernel == "hmc" else {}
    with pytest.raises(ValueError, match=f"initial: the {quantity} is not finite at chain 2's start"):
        hmc.sample(target, initial, num_samples=10, num_warmup=10, num_chains=3, backend=backend, kernel=kernel,
                   **steps)


@pytest.mark.parametrize("fault", ["nan", "inf", "nan-gradient"])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_nuts_rejects_non_finite_values_as_divergent(fault, backend):
    """NUTS on the same faulty target: a leaf where log p is NaN or +inf, or whose gradient is NaN
    (the momentum's half step turns NaN), ends its subtree as a divergence; the draws and their
    log p stay finite and inside the region."""
    target = _gaussian_target(fault, radius=2.5)
    result = hmc.nuts(target, np.zeros(5), num_samples=200, num_warmup=100, num_chains=2, seed=4, backend=backend,
                      warn=False)
    assert result.num_divergent > 0
    assert np.isfinite(result.samples).all() and np.isfinite(result.log_prob).all()
    assert np.isfinite(result.energy).all()
    assert np.all(np.linalg.norm(result.samples, axis=-1) <= 2.5)


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_nuts_an_exception_inside_user_code_reaches_the_caller(backend):
    target = _gaussian_target("raise", radius=2.5)
    with pytest.raises(ValueError, match="x left the region") as caught:
        hmc.nuts(target, np.zeros(5), num_samples=300, num_warmup=100, num_chains=3, seed=4, backend=backend)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert f"backend '{backend}'" in notes
    if backend == "cpp":
        assert "at x = [" in notes and "NUTS on backend 'cpp', in transitions " in notes
    else:
        assert re.search(r"in chain [0-2], transition \d+ \((warm-up|sampling)\)", notes), notes
    # The target is left usable: a run that stays inside the region works.
    quiet = hmc.nuts(target, np.zeros(5), num_samples=5, num_warmup=0, step_size=1e-3, max_tree_depth=1,
                     backend=backend, warn=False)
    assert np.isfinite(quiet.samples).all()


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_nuts_an_exception_at_the_start(backend):
    target = _gaussian_target("raise", radius=2.5)
    with pytest.raises(ValueError, match="x left the region") as caught:
        hmc.nuts(target, np.full(5, 3.0), num_samples=5, num_warmup=0, backend=backend)
    assert "start" in " ".join(getattr(caught.value, "__notes__", []))


def test_nuts_an_exception_in_a_python_log_density_names_chain_and_transition():
    calls = {"n": 0, "fail": np.inf}

    def log_density(x):
        calls["n"] += 1
        if calls["n"] > calls["fail"]:
            raise ArithmeticError("boom")
        return -0.5 * float(x @ x)

    target = LogDensity(log_density, lambda x: -x, dim=2)
    run = dict(num_samples=20, num_warmup=5, num_chains=2, seed=3, backend="numpy", warn=False)
    hmc.nuts(target, [0.0, 0.0], **run)
    # The chains run in turn after both starts: the last three calls are chain 1's, in its last
    # transitions (NUTS: at least one leapfrog step, one call, each).
    calls["n"], calls["fail"] = 0, calls["n"] - 3
    with pytest.raises(ArithmeticError, match="boom") as caught:
        hmc.nuts(target, [0.0, 0.0], **run)
    assert re.search(r"in chain 1, transition (1\d|2[0-4]) \(sampling\), backend 'numpy'",
                     caught.value.__notes__[0]), caught.value.__notes__
    calls["n"], calls["fail"] = 0, 1  # the second chain's start
    with pytest.raises(ArithmeticError, match="boom") as caught:
        hmc.nuts(target, [0.0, 0.0], **run)
    assert "at chain 1's start, backend 'numpy'" in caught.value.__notes__[0]


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_an_exception_inside_user_code_reaches_the_caller(backend):
    target = _gaussian_target("raise", radius=2.5)
    with pytest.raises(ValueError, match="x left the region") as caught:
        hmc.sample(target, np.zeros(5), num_samples=300, num_warmup=100, step_size=0.3, num_steps=10, num_chains=9,
                   seed=4, backend=backend)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert f"backend '{backend}'" in notes
    if backend == "numpy":
        assert "chain 0, transition" in notes
    elif backend == "numba":
        assert "chains 0..7, transition" in notes
    else:
        assert "at x = [" in notes
    # The target is left usable: a run that stays inside the region works.
    quiet = hmc.sample(target, np.zeros(5), num_samples=5, num_warmup=0, step_size=1e-3, num_steps=2,
                       backend=backend)
    assert np.isfinite(quiet.samples).all()


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_an_exception_at_the_start(backend):
    target = _gaussian_target("raise", radius=2.5)
    with pytest.raises(ValueError, match="x left the region"):
        hmc.sample(target, np.full(5, 3.0), num_samples=5, num_warmup=0, step_size=0.1, num_steps=2, backend=backend)


def test_an_exception_in_a_python_log_density_names_chain_and_transition():
    calls = {"n": 0}

    def log_density(x):
        calls["n"] += 1
        if calls["n"] > 60:
            raise ArithmeticError("boom")
        return -0.5 * float(x @ x)

    target = LogDensity(log_density, lambda x: -x, dim=2)  # (calls log_density once, at check_point)
    # One chain: the numpy backend runs the chains in turn within each chunk of iterations, so with
    # several the failing call's place would depend on where the chunks are cut. Call 61 is the
    # 59th after the start's, in leapfrog step 4 of transition 11 (5 calls per transition).
    with pytest.raises(ArithmeticError, match="boom") as caught:
        hmc.sample(target, [0.0, 0.0], num_samples=20, num_warmup=5, step_size=0.1, num_steps=5, backend="numpy")
    assert "chain 0, transition 11 (sampling)" in caught.value.__notes__[0]
    calls["n"] = 59  # the next two calls are the starts of chains 0 and 1
    with pytest.raises(ArithmeticError, match="boom") as caught:
        hmc.sample(target, [0.0, 0.0], num_samples=20, num_warmup=5, step_size=0.1, num_steps=5, num_chains=2,
                   backend="numpy")
    assert "at chain 1's start, backend 'numpy'" in caught.value.__notes__[0]


# -- bad input -----------------------------------------------------------------------------------


@numba.njit(cache=True)
def _one_argument(x):
    return 0.0


@numba.njit(cache=True)
def _returns_tuple(x, grad):
    grad[:] = 0.0
    return 0.0, 1.0


@numba.njit(cache=True)
def _returns_array(x, grad):
    grad[:] = 0.0
    return x * 1.0


@numba.njit(cache=True)
def _forgets_the_gradient(x, grad):
    return -0.5 * (x[0] * x[0] + x[1] * x[1])


@numba.njit(cache=True)
def _raises(x, grad):
    raise ZeroDivisionError("fn failed")


@numba.njit(cache=True)
def _scaled(x, grad, scale, values):
    for i in range(x.shape[0]):
        grad[i] = -scale * x[i]
    return -0.5 * scale * (x[0] * x[0] + x[1] * x[1]) + values[0]


@numba.njit(parallel=True)
def _parallel(x, grad):
    return 0.0


@pytest.mark.parametrize("fn, dim, data, kwargs, error, match", [
    (lambda x, grad: 0.0, 2, (), {}, TypeError, r"fn must be a @numba.njit function .* decorate it with @numba.njit"),
    (3, 2, (), {}, TypeError, "fn must be a @numba.njit function"),
    (_parallel, 2, (), {}, TypeError, "parallel=True"),
    (_one_argument, 2, (), {}, TypeError, r"fn cannot be called as fn\(x, grad, \*data\)"),
    (_scaled, 2, (1.0,), {}, TypeError, r"fn cannot be called as fn\(x, grad, \*data\).*\(float64\)"),
    (_returns_tuple, 2, (), {}, TypeError, "fn must return log p\\(x\\) as one number, got tuple"),
    (_returns_array, 2, (), {}, TypeError, r"fn must return log p\(x\) as one number, got ndarray of shape \(2,\)"),
    (_forgets_the_gradient, 2, (), {}, ValueError, "left non-finite values in grad"),
    (_scaled, 0, (1.0, np.zeros(1)), {}, ValueError, "dim must be >= 1"),
    (_scaled, 2, np.zeros(2), {}, TypeError, "data must be a tuple"),
    (_scaled, 2, (1.0, [0.0]), {}, TypeError, r"data\[1\] must be a numpy array or a number, got list"),
    (_scaled, 2, (1.0, np.zeros((3, 2))[:, 0]), {}, ValueError, r"data\[1\] must be C-contiguous"),
    (_scaled, 2, (1.0, np.array(["a"])), {}, TypeError, r"data\[1\] must be an array of numbers"),
    (_scaled, 2, (1.0, np.array(0.0)), {}, ValueError, r"data\[1\] is a 0-d array"),
    (_scaled, 2, (2**64, np.zeros(1)), {}, ValueError, r"data\[0\] = .* does not fit"),
    (_scaled, 2, (1.0, np.zeros(1)), {"check_point": np.zeros(3)}, ValueError, r"check_point must have shape \(2,\)"),
    (_scaled, 2, (1.0, np.zeros(1)), {"check_point": [np.nan, 0.0]}, ValueError, "check_point must contain only finite"),
])
def test_numba_target_bad_input(fn, dim, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        NumbaTarget(fn, dim, data=data, **kwargs)


def test_numba_target_exception_at_the_check_point():
    with pytest.raises(ZeroDivisionError, match="fn failed") as caught:
        NumbaTarget(_raises, 2)
    assert "check_point = [0.0, 0.0]" in caught.value.__notes__[0]


def test_numba_target_data_and_check_point():
    values = np.array([0.25])
    target = NumbaTarget(_scaled, 2, data=(2, values), check_point=[1.0, 1.0])
    assert target.data[1] is values  # passed as it is, not copied
    log_prob, grad = target.log_prob_and_grad(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_array_equal(log_prob, [-0.75, -3.75])
    np.testing.assert_array_equal(grad, [[-2.0, 0.0], [0.0, -4.0]])


def test_dimension_mismatch_with_initial(user_gaussian):
    for backend in ("cpp", "numba", "numpy"):
        with pytest.raises(ValueError, match=r"initial must have shape \(5,\)"):
            hmc.sample(user_gaussian, np.zeros(2), 10, 10, 0.1, 5, backend=backend)


def test_c_target_bad_input(c_library):
    with pytest.raises(ValueError, match="address must be a non-null function pointer"):
        CTarget(0, 2)
    with pytest.raises(ValueError, match="address must be a non-null function pointer"):
        CTarget(ctypes.c_void_p(None), 2)
    with pytest.raises(TypeError, match="address must be an address"):
        CTarget("banana", 2)
    with pytest.raises(TypeError, match="user_data must be an address"):
        CTarget(_c_address(c_library, "banana"), 2, user_data="data")
    with pytest.raises(ValueError, match="dim must be >= 1"):
        CTarget(_c_address(c_library, "banana"), 0)


def test_c_target_runs_on_cpp_and_numpy_only(c_banana, default_banana):
    with pytest.raises(TypeError, match=r"CTarget cannot run on backend 'numba'.*use backend='cpp' or 'numpy'"):
        hmc.sample(c_banana, [0.0, 0.0], 10, 10, 0.1, 5, backend="numba")
    x = np.array([[0.3, -0.2], [1.0, 0.5]])
    np.testing.assert_array_equal(c_banana.log_prob_and_grad(x)[0], default_banana.log_prob_and_grad(x, backend="cpp")[0])


def test_c_target_from_a_numba_cfunc_and_a_ctypes_function():
    from pyvi._numba.targets.callback import SIGNATURE
    from pyvi.targets.c_target import C_SIGNATURE

    @numba.cfunc(SIGNATURE)
    def normal(x, grad, dim, user_data):
        total = 0.0
        for i in range(dim):
            grad[i] = -x[i]
            total -= 0.5 * x[i] * x[i]
        return total

    def python_normal(x, grad, dim, user_data):
        total = 0.0
        for i in range(dim):
            grad[i] = -x[i]
            total -= 0.5 * x[i] * x[i]
        return total

    pointer = C_SIGNATURE(python_normal)
    for target in (CTarget(normal, 3), CTarget(pointer, 3)):
        result = hmc.sample(target, np.zeros(3), num_samples=1000, num_warmup=200, step_size=0.5, num_steps=5,
                            random_steps=True, seed=1, warn=False)
        assert abs(result.flat_samples().mean()) < 0.2 and abs(result.flat_samples().var() - 1.0) < 0.2
    np.testing.assert_array_equal(CTarget(normal, 3).log_prob_and_grad(np.ones(3))[1], -np.ones(3))


def test_log_density_bad_input():
    with pytest.raises(TypeError, match="grad_fn is required: pyvi does not difference numerically"):
        LogDensity(lambda x: 0.0, dim=2)
    with pytest.raises(TypeError, match=r"logdensity_fn must return one real number \(a float or a 0-d array\), got tuple"):
        LogDensity(lambda x: (0.0, 1.0), lambda x: x, dim=2)
    with pytest.raises(TypeError, match="grad_fn must return real numbers, got dtype <U1"):
        LogDensity(lambda x: 0.0, lambda x: "x", dim=2)
    with pytest.raises(ZeroDivisionError) as caught:
        LogDensity(lambda x: 1.0 / float(x[0]), lambda x: x, dim=2)
    assert "check_point = [0.0, 0.0]" in caught.value.__notes__[0]
    target = LogDensity(lambda x: 1.0 / float(x[0]), lambda x: -1.0 / x**2, dim=2, check_point=[1.0, 1.0])
    assert target.log_prob_and_grad(np.array([2.0, 1.0]))[0] == 0.5


# -- VI on any target ------------------------------------------------------------------------------


def _fit(target, steps=20):
    flow = RealNVP(num_couplings=2, hidden=4, depth=2, seed=0).double()
    return vi.fit(flow, target, num_steps=steps, batch_size=64, progress=False), flow


@pytest.mark.parametrize("kind", ["numba", "c"])
def test_vi_fits_a_user_target_as_it_fits_the_built_in_banana(kind, user_banana, c_banana, default_banana):
    """vi.fit on the user's banana (the autograd-free path through the native op) follows the same
    ELBO trajectory as on the built-in banana's fused op (the same density, other arithmetic)."""
    target = user_banana if kind == "numba" else c_banana
    assert vi._fast_path(RealNVP(num_couplings=2, hidden=4, depth=2).double(), target, "fused") is not None
    user, user_flow = _fit(target)
    built_in, built_in_flow = _fit(default_banana)
    np.testing.assert_allclose(user.elbo, built_in.elbo, rtol=1e-9)
    torch.testing.assert_close(user_flow.params, built_in_flow.params, rtol=1e-7, atol=1e-9)
    bound = vi.elbo(user_flow, target, num_samples=2_000)
    reference = vi.elbo(built_in_flow, default_banana, num_samples=2_000)
    assert bound.value == pytest.approx(reference.value, rel=1e-9)


def test_vi_kl_needs_the_log_evidence(user_banana):
    flow = RealNVP(num_couplings=2, hidden=4, depth=2, seed=0).double()
    with pytest.raises(TypeError, match="NumbaTarget does not know its log evidence.*vi.elbo"):
        vi.kl(flow, user_banana, num_samples=10)
    assert math.isfinite(vi.elbo(flow, user_banana, num_samples=100).value)


@pytest.mark.parametrize("kind", ["numba", "c"])
def test_the_torch_face_of_a_user_target(kind, user_banana, c_banana, default_banana):
    target = user_banana if kind == "numba" else c_banana
    theta = torch.randn(5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    log_prob = target.torch_log_prob()(theta)
    expected, expected_grad = default_banana.log_prob_and_grad(theta.detach().numpy())
    np.testing.assert_allclose(log_prob.detach().numpy(), expected, rtol=1e-12)
    log_prob.sum().backward()
    np.testing.assert_allclose(theta.grad.numpy(), expected_grad, rtol=1e-12)
    value, grad = target.fused_log_joint()(torch.tensor([[np.nan, 0.0], [0.1, 0.2]], dtype=torch.float32))
    assert value.dtype == torch.float32 and math.isnan(value[0]) and math.isfinite(value[1])  # NaN in, NaN out
    with pytest.raises(ValueError, match="on the CPU"):
        target.fused_log_joint()(torch.zeros(2, 2, device="meta"))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        target.fused_log_joint()(torch.zeros(2, 3))
