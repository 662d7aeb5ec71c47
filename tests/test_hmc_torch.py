"""The torch HMC backend (pyvi/hmc/torch_backend/) and TorchTarget: exact moments on the CPU (and on
CUDA, skipped without a GPU), per-chain adaptation, divergences without NaN, reproducibility, the
capture-safe step against a plain loop, CUDA graphs against eager steps, bad input.

The generic backend tests (bad input, absurd step sizes, adaptation, the banana and 2-D Gaussian
moments) run on ``torch`` through tests/test_hmc.py's backend list; this file holds what is the
torch backend's own."""

import math

import numpy as np
import pytest
import torch

import pyvi.targets
from pyvi import hmc
from pyvi.hmc.settings import Settings, constants
from pyvi.hmc.torch_backend.dual_averaging import DualAveraging
from pyvi.hmc.torch_backend.face import torch_face
from pyvi.hmc.torch_backend.rng import RandomSource
from pyvi.hmc.torch_backend.state import State
from pyvi.hmc.torch_backend.transition import StaticKernel
from pyvi.models import logistic_torch_target
from pyvi.targets import Banana, Gaussian, TorchTarget
from pyvi.testing import DEVICES, cuda_available

# These tests check the torch backend's draws, errors and devices, not whether a run mixed well:
# pyvi.hmc.checks' warnings (tests/test_hmc_checks.py) are off here, as warn=False would do.
pytestmark = pytest.mark.filterwarnings("ignore::pyvi.hmc.HMCWarning")

cuda = pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build")


def assert_moments(result, mean, cov, z=4.5):
    """Every mean and covariance entry within z Monte Carlo standard errors (SEs from the bulk ESS)."""
    flat = result.flat_samples()
    ess = np.minimum(result.ess_bulk, len(flat))
    np.testing.assert_array_less(np.abs(flat.mean(axis=0) - mean), z * np.sqrt(np.diag(cov) / ess))
    centred = flat - mean
    for i in range(len(mean)):
        for j in range(i + 1):
            product = centred[:, i] * centred[:, j]
            se = np.std(product) / math.sqrt(min(ess[i], ess[j]))
            assert abs(product.mean() - cov[i, j]) < z * se, (i, j, product.mean(), cov[i, j], se)


def correlated_gaussian(dim=5, seed=5):
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    cov = a @ a.T / dim + 0.2 * np.eye(dim)  # correlations up to 0.6 in magnitude
    return Gaussian(np.linspace(-1.0, 2.0, dim), cov)


def as_torch_target(gaussian: Gaussian, device: str = "cpu") -> TorchTarget:
    """The Gaussian written as a user would: plain torch on the model's device, no pyvi face."""
    mean = torch.tensor(gaussian.mean, device=device)
    precision = torch.tensor(gaussian.precision, device=device)

    def log_prob(x):
        centred = x - mean
        return -0.5 * ((centred @ precision) * centred).sum(-1)

    return TorchTarget(log_prob, gaussian.dim, check_point=torch.zeros(gaussian.dim, dtype=torch.float64,
                                                                       device=device))


# -- correctness against exact moments ---------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_banana_moments_match_exact(homework_banana, device):
    """The fused banana op (no autograd), many chains in lockstep, the homework's step 0.05."""
    result = hmc.sample(homework_banana, np.random.default_rng(0).normal(size=(32, 2)), num_samples=2500,
                        num_warmup=500, step_size=0.05, num_steps=20, num_chains=32, adapt_step_size=False,
                        seed=5, backend="torch", device=device)
    assert result.backend == "torch" and result.samples.shape == (32, 2500, 2)
    assert result.num_divergent == 0
    assert np.all(result.rhat < 1.01)
    mean, cov = homework_banana.posterior_moments()
    assert_moments(result, mean, cov)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("as_user_target", [False, True], ids=["Gaussian", "TorchTarget"])
def test_correlated_5d_gaussian_moments(device, as_user_target):
    gaussian = correlated_gaussian()
    target = as_torch_target(gaussian, device) if as_user_target else gaussian
    result = hmc.sample(target, np.zeros(5), num_samples=1000, num_warmup=300, step_size=0.2, num_steps=10,
                        random_steps=True, num_chains=16, seed=11, backend="torch", device=device, num_threads=1)
    assert result.num_divergent == 0
    assert np.all(result.rhat < 1.01)
    assert 0.65 < result.mean_accept_prob < 0.95
    assert_moments(result, gaussian.mean, gaussian.cov)


def test_float32_runs_and_records_float64_outputs(default_banana):
    result = hmc.sample(default_banana, [1.0, 0.5], num_samples=200, num_warmup=200, step_size=0.05, num_steps=10,
                        num_chains=8, seed=3, backend="torch", dtype=torch.float32)
    assert result.samples.dtype == np.float64 and np.all(np.isfinite(result.samples))
    assert np.all(result.samples.astype(np.float32) == result.samples)  # float32 values, stored as float64
    assert result.mean_accept_prob > 0.5


def _reference_runs(model):
    """The same posterior on the other backends: numpy, and cpp and numba through the model's
    NumbaTarget (issue #11's user targets)."""
    from pyvi.models.logistic_regression import logistic_log_joint

    kwargs = dict(num_samples=600, num_warmup=300, step_size=0.05, num_steps=10, random_steps=True, num_chains=4,
                  seed=2)
    runs = {"numpy": hmc.sample(model, np.zeros(model.dim), backend="numpy", **kwargs)}
    user = pyvi.targets.NumbaTarget(logistic_log_joint, model.dim, data=model.data)
    for backend in ("cpp", "numba"):
        runs[backend] = hmc.sample(user, np.zeros(model.dim), backend=backend, **kwargs)
    return runs


def test_logistic_regression_posterior_means_agree_with_the_other_backends():
    """Issue #11's user model (569 x 31, correlated coefficients): the TorchTarget on the torch
    backend and the same posterior on every other backend agree on all 31 posterior means within
    Monte Carlo error (z = 4.5 from the bulk ESS of both runs)."""
    from pyvi.models import LogisticRegression

    model = LogisticRegression.breast_cancer()
    result = hmc.sample(logistic_torch_target(model), np.zeros(model.dim), num_samples=300, num_warmup=300,
                        step_size=0.05, num_steps=10, random_steps=True, num_chains=16, seed=1, backend="torch",
                        num_threads=1)  # small ops: a second (busy) core slows them down
    assert result.num_divergent == 0 and np.all(result.rhat < 1.05)
    mean, var = result.flat_samples().mean(axis=0), result.flat_samples().var(axis=0)
    for backend, reference in _reference_runs(model).items():
        flat = reference.flat_samples()
        se = np.sqrt(var / result.ess_bulk + flat.var(axis=0) / reference.ess_bulk)
        z = np.abs(mean - flat.mean(axis=0)) / se
        assert z.max() < 4.5, (backend, z.round(2))


# -- per-chain adaptation, divergences -----------------------------------------------------------------


def test_each_chain_adapts_its_own_step_size():
    """Chains on scales 0.01 .. 10 (a row-dependent density, legal for a test: chain i samples
    N(0, scale_i^2 I)) each adapt a step size proportional to their scale."""
    scale = torch.tensor([0.01, 0.1, 1.0, 10.0], dtype=torch.float64)
    target = TorchTarget(lambda x: -0.5 * ((x / scale.unsqueeze(1)) ** 2).sum(-1), dim=2,
                         check_point=torch.zeros(4, 2, dtype=torch.float64))
    result = hmc.sample(target, np.zeros((4, 2)), num_samples=2000, num_warmup=1000, step_size=0.1, num_steps=5,
                        random_steps=True, num_chains=4, seed=8, backend="torch", num_threads=1)
    relative = result.step_size / scale.numpy()
    assert relative.max() / relative.min() < 1.5, result.step_size
    assert np.all(np.abs(result.accept_prob.mean(axis=1) - 0.8) < 0.1)
    np.testing.assert_allclose(result.samples.std(axis=1).mean(axis=1), scale.numpy(), rtol=0.15)


def test_absurd_step_size_is_all_divergent_and_never_nan(default_banana):
    result = hmc.sample(default_banana, np.full((6, 2), 0.5), num_samples=40, num_warmup=0, step_size=1e3,
                        num_steps=5, num_chains=6, adapt_step_size=False, seed=1, backend="torch")
    assert result.num_divergent == 6 * 40 and np.all(result.accept_prob == 0.0)
    assert np.all(result.samples == 0.5) and np.all(np.isfinite(result.log_prob))


def _nan_beyond_one(x):
    """N(0, I), but NaN where x0 > 1 (a user's bug, or a support the model forgot)."""
    log_prob = -0.5 * (x * x).sum(-1)
    return torch.where(x[:, 0] > 1.0, torch.nan, log_prob)


def _nan_gradient_where_positive(x):
    """N(0, I) with a finite log density everywhere but a NaN gradient where 0 < x0: torch.where's
    backward of an unselected NaN branch (0 * d sqrt(-x0))."""
    log_prob = -0.5 * (x * x).sum(-1)
    return log_prob + torch.where(x[:, 0] <= 0.0, 0.0 * torch.sqrt(-x[:, 0]), 0.0)


def _plus_inf_beyond_one(x):
    """+inf where x0 > 1: an infinite energy gain is not a free pass."""
    log_prob = -0.5 * (x * x).sum(-1)
    return torch.where(x[:, 0] > 1.0, torch.inf, log_prob)


def _raises_on_non_finite(x):
    """Refuses inf and NaN as torch.distributions' support checks do (with a host sync)."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x is not finite")
    return -0.5 * (x * x).sum(-1)


@pytest.mark.parametrize("fn", [_nan_beyond_one, _nan_gradient_where_positive, _plus_inf_beyond_one],
                         ids=["NaN log density", "NaN gradient", "+inf log density"])
def test_non_finite_user_values_are_rejected_divergences(fn):
    start = np.array([[-1.5, 0.0]] * 8)
    result = hmc.sample(TorchTarget(fn, 2, check_point=start), start, num_samples=500, num_warmup=0, step_size=0.3,
                        num_steps=8, num_chains=8, adapt_step_size=False, seed=4, backend="torch")
    assert np.all(np.isfinite(result.samples)) and np.all(np.isfinite(result.log_prob))
    assert np.all(np.isfinite(result.accept_prob))
    assert result.num_divergent > 0
    limit = 0.0 if fn is _nan_gradient_where_positive else 1.0
    assert result.samples[..., 0].max() <= limit  # never accepted where the values were not finite
    rejected = result.divergent & (result.accept_prob == 0.0)
    np.testing.assert_array_equal(rejected, result.divergent)


def test_overflowing_trajectories_never_reach_the_user_function():
    """A trajectory that overflows is rejected; the target is handed 0 instead of inf or NaN."""
    target = TorchTarget(_raises_on_non_finite, 2)
    result = hmc.sample(target, np.zeros(2), num_samples=30, num_warmup=0, step_size=1e200, num_steps=3,
                        num_chains=3, adapt_step_size=False, seed=0, backend="torch")
    assert result.num_divergent == 90 and np.all(result.samples == 0.0)


# -- reproducibility, the capture-safe step ----------------------------------------------------------


def _run(target, **overrides):
    kwargs = dict(initial=np.random.default_rng(1).normal(size=(5, 2)), num_samples=150, num_warmup=150,
                  step_size=0.05, num_steps=10, num_chains=5, random_steps=True, seed=21, backend="torch")
    kwargs.update(overrides)
    return hmc.sample(target, **kwargs)


def test_same_seed_same_draws_whatever_the_threads(default_banana):
    one = _run(default_banana, num_threads=1)
    two = _run(default_banana, num_threads=2)
    for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)
    assert not np.array_equal(one.samples, _run(default_banana, seed=22).samples)
    assert not np.array_equal(one.samples[0], one.samples[1])


def test_autograd_targets_do_not_depend_on_the_threads_either():
    """The 5-D Gaussian's torch face (matrix products, autograd) on 300 chains."""
    target = correlated_gaussian()
    kwargs = dict(num_samples=20, num_warmup=20, step_size=0.05, num_steps=10, num_chains=300, seed=3,
                  backend="torch")
    one = hmc.sample(target, np.zeros(5), num_threads=1, **kwargs)
    two = hmc.sample(target, np.zeros(5), num_threads=2, **kwargs)
    np.testing.assert_array_equal(one.samples, two.samples)


def test_torch_threads_are_restored(default_banana):
    before = torch.get_num_threads()
    _run(default_banana, num_threads=1, num_samples=5, num_warmup=5)
    assert torch.get_num_threads() == before


def _plain_loop(target, initial, settings: Settings):
    """The sampler written as the plainest loop over the kernel and the adaptation: no recorder
    slots or flushes, no GraphedSteps, no inference mode, the draws copied out one by one."""
    face = torch_face(target)
    x = torch.tensor(initial)
    log_prob, grad = face(x)
    state = State(x, log_prob, grad)
    step_size = torch.full((len(x),), settings.step_size, dtype=torch.float64)
    kernel = StaticKernel(face, state, settings.num_steps, settings.random_steps, constants()["max_energy_error"])
    kernel.set_step_size(step_size)
    adaptation = DualAveraging(step_size.clone(), settings.target_accept, constants())
    random = RandomSource(settings.seed, torch.device("cpu"))
    samples, accept = [], []
    with torch.no_grad():
        for _ in range(settings.num_warmup):
            info = kernel(state, random)
            adaptation.update(info.accept_prob, step_size)
            kernel.set_step_size(step_size)
        adaptation.final_step(step_size)
        kernel.set_step_size(step_size)
        for _ in range(settings.num_samples):
            info = kernel(state, random)
            samples.append(state.x.numpy().copy())
            accept.append(info.accept_prob.numpy().copy())
    return np.stack(samples, axis=1), np.stack(accept, axis=1), step_size.numpy()


@pytest.mark.parametrize("random_steps", [False, True])
def test_the_capture_safe_driver_equals_a_plain_loop(default_banana, random_steps):
    result = _run(default_banana, random_steps=random_steps)
    settings = Settings.validated(**{k: result.settings[k] for k in result.settings})
    samples, accept, step_size = _plain_loop(default_banana, np.random.default_rng(1).normal(size=(5, 2)), settings)
    np.testing.assert_array_equal(result.samples, samples)
    np.testing.assert_array_equal(result.accept_prob, accept)
    np.testing.assert_array_equal(result.step_size, step_size)


def test_chains_whose_path_ends_early_stand_still(default_banana):
    """The random-length leapfrog: a chain whose path has ended (drift and kick 0) stands still,
    exactly where a path of its own length ends, while the others go on."""
    from pyvi.hmc.torch_backend.leapfrog import leapfrog
    from pyvi.hmc.torch_backend.metric import IdentityMetric

    face = torch_face(default_banana)
    x0 = torch.tensor([[0.3, 0.6], [-0.2, 0.9]], dtype=torch.float64)
    p0 = torch.tensor([[0.4, -0.8], [1.1, 0.3]], dtype=torch.float64)
    _, grad = face(x0)
    step = torch.full_like(x0, 0.05)
    half = step / 2

    def integrate(drifts, kicks):
        x, p = x0.clone(), p0.clone()
        log_prob, _ = leapfrog(face, IdentityMetric(2, x.dtype, x.device), x, p, grad, half, drifts, kicks)
        return x, p, log_prob

    # Row 0 runs 7 steps; row 1 stops after 4 and stands still for the last 3.
    go = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    mixed = integrate([step] * 4 + [step * go] * 3,
                      [step] * 3 + [torch.where(go > 0, step, half)] + [step * go] * 2 + [half * go])
    for row, steps in ((0, 7), (1, 4)):
        fixed = integrate([step] * steps, [step] * (steps - 1) + [half])
        for got, expected in zip(mixed, fixed):
            np.testing.assert_array_equal(got[row].numpy(), expected[row].numpy())


def test_leapfrog_agrees_with_the_cpp_one(default_banana):
    torch_end = hmc.leapfrog(default_banana, [0.5, 0.5], [0.1, -0.2], 0.03, 100, backend="torch")
    cpp_end = hmc.leapfrog(default_banana, [0.5, 0.5], [0.1, -0.2], 0.03, 100, backend="cpp")
    for got, expected in zip(torch_end, cpp_end):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


# -- CUDA (skipped without a GPU) ----------------------------------------------------------------------


@cuda
@pytest.mark.parametrize("random_steps", [False, True])
@pytest.mark.parametrize("make", [lambda: Banana.default(), lambda: as_torch_target(correlated_gaussian(2), "cuda"),
                                  lambda: correlated_gaussian(2)], ids=["fused op", "TorchTarget", "Gaussian"])
def test_cuda_graphs_equal_eager_steps(make, random_steps):
    target = make()
    initial = np.random.default_rng(2).normal(size=(64, 2))
    kwargs = dict(num_samples=70, num_warmup=45, step_size=0.05, num_steps=12, num_chains=64, seed=3,
                  random_steps=random_steps, backend="torch", device="cuda")
    eager = hmc.sample(target, initial, cuda_graph=False, **kwargs)
    graphed = hmc.sample(target, initial, cuda_graph=True, **kwargs)
    for field in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "step_size"):
        np.testing.assert_array_equal(getattr(graphed, field), getattr(eager, field), err_msg=field)


@cuda
def test_cuda_capture_failure_falls_back_or_raises():
    """A target that synchronises with the host cannot be captured: None warns and runs eagerly
    (the draws of cuda_graph=False), True raises."""
    target = TorchTarget(_raises_on_non_finite, 2, check_point=torch.zeros(2, 2, dtype=torch.float64, device="cuda"))
    kwargs = dict(num_samples=40, num_warmup=20, step_size=0.2, num_steps=5, num_chains=8, seed=1, backend="torch",
                  device="cuda")
    with pytest.warns(RuntimeWarning, match="could not be captured into a CUDA graph"):
        fallback = hmc.sample(target, np.zeros(2), **kwargs)
    eager = hmc.sample(target, np.zeros(2), cuda_graph=False, **kwargs)
    np.testing.assert_array_equal(fallback.samples, eager.samples)
    with pytest.raises(Exception, match="cuda_graph=True"):
        hmc.sample(target, np.zeros(2), cuda_graph=True, **kwargs)
    # The device is still usable afterwards.
    assert np.all(np.isfinite(hmc.sample(Banana.default(), [1.0, 0.5], **kwargs).samples))


# -- bad input -----------------------------------------------------------------------------------------


def _standard_normal(x):
    return -0.5 * (x * x).sum(-1)


@pytest.mark.parametrize(
    "fn, dim, kwargs, error, match",
    [
        ("not callable", 2, {}, TypeError, "fn must be callable"),
        (lambda x, y: x.sum(-1), 2, {}, TypeError, r"fn must take one \(2, 2\) tensor"),
        (lambda x: x.detach().numpy().sum(-1), 2, {}, TypeError, "fn must return a torch.Tensor"),
        (lambda x: (x * x).sum(), 2, {}, ValueError, r"fn must return shape \(2,\) .* got \(\)"),
        (lambda x: x * x, 2, {}, ValueError, r"fn must return shape \(2,\) .* got \(2, 2\)"),
        (lambda x: (x * x).sum(-1).float(), 2, {}, TypeError, "in its input's dtype torch.float64"),
        (lambda x: (x * x).sum(-1).detach(), 2, {}, TypeError, "does not depend on its input through autograd"),
        (lambda x: torch.zeros(len(x), dtype=x.dtype), 2, {}, TypeError, "through autograd"),
        (_standard_normal, 0, {}, ValueError, "dim must be >= 1"),
        (_standard_normal, 2.0, {}, TypeError, "dim must be an integer"),
        (_standard_normal, 2, {"check_point": np.zeros(3)}, ValueError, r"check_point must have shape \(2,\)"),
        (_standard_normal, 2, {"check_point": "zeros"}, TypeError, "check_point must be an array"),
        (_standard_normal, 2, {"check_point": torch.zeros(2, 2, dtype=torch.int64)}, TypeError, "floating-point"),
    ],
)
def test_torch_target_bad_input_is_caught_at_construction(fn, dim, kwargs, error, match):
    with pytest.raises(error, match=match):
        TorchTarget(fn, dim, **kwargs)


def test_an_exception_at_the_construction_check_says_so():
    def positive_only(x):
        if bool((x <= 0).any()):
            raise ValueError("x must be positive")
        return -x.sum(-1)

    with pytest.raises(ValueError, match="x must be positive") as caught:
        TorchTarget(positive_only, 2)
    assert "TorchTarget's construction check" in "\n".join(caught.value.__notes__)
    assert TorchTarget(positive_only, 2, check_point=[1.0, 2.0]).log_prob_and_grad([1.0, 1.0])[0] == -2.0


def test_an_exception_inside_the_target_says_where_it_happened():
    calls = []

    def fails_on_the_fortieth_call(x):
        calls.append(1)
        if len(calls) == 40:
            raise KeyError("model bug")
        return _standard_normal(x)

    target = TorchTarget(fails_on_the_fortieth_call, 2)  # call 1: the construction check
    with pytest.raises(KeyError, match="model bug") as caught:
        hmc.sample(target, np.zeros(2), num_samples=10, num_warmup=10, step_size=0.1, num_steps=5, num_chains=3,
                   backend="torch")
    # Call 2 evaluates the starts; calls 3-7 are transition 1, ..., calls 38-42 transition 8.
    assert "in warm-up transition 8 of 10, leapfrog step 3 of 5" in "\n".join(caught.value.__notes__)
    calls.clear()
    with pytest.raises(KeyError) as caught:
        hmc.sample(target, np.zeros(2), num_samples=10, num_warmup=0, step_size=0.1, num_steps=20, backend="torch")
    assert "in sampling transition 2 of 10, leapfrog step 19 of 20" in "\n".join(caught.value.__notes__)


def test_a_user_function_that_changes_its_output_shape_is_caught_at_the_start():
    target = TorchTarget(lambda x: _standard_normal(x)[:2], 2)  # right for 2 rows only
    with pytest.raises(ValueError, match=r"must return shape \(3,\) for a \(3, 2\) input"):
        hmc.sample(target, np.zeros(2), 10, 10, 0.1, 5, num_chains=3, backend="torch")


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(device="tpu"), ValueError, "device must be"),
        (dict(device="meta"), ValueError, "device must be a CPU or CUDA device"),
        (dict(dtype=torch.int32), TypeError, "dtype must be torch.float32 or torch.float64"),
        (dict(dtype="float64"), TypeError, "dtype must be"),
        (dict(cuda_graph="yes"), TypeError, "cuda_graph must be None, True or False"),
        (dict(cuda_graph=True), ValueError, "cuda_graph=True needs device='cuda'"),
        (dict(backend="cpp", device="cpu"), ValueError, "device applies to backend='torch' only"),
        (dict(backend="numba", dtype=torch.float32), ValueError, "dtype applies to backend='torch' only"),
        (dict(backend="numpy", cuda_graph=False), ValueError, "cuda_graph applies to backend='torch' only"),
        (dict(initial=[1e200, 0.0]), ValueError, "initial: the log density is not finite at chain 0's start"),
    ],
)
def test_bad_torch_options(default_banana, overrides, error, match):
    kwargs = dict(initial=[1.0, 0.5], num_samples=10, num_warmup=10, step_size=0.05, num_steps=5, backend="torch")
    kwargs.update(overrides)
    with pytest.raises(error, match=match):
        hmc.sample(default_banana, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_clear_error(default_banana):
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        hmc.sample(default_banana, [1.0, 0.5], 10, 10, 0.05, 5, backend="torch", device="cuda")


def test_non_finite_start_names_the_chain():
    target = TorchTarget(_nan_beyond_one, 2)
    with pytest.raises(ValueError, match="not finite at chain 2's start"):
        hmc.sample(target, [[0.0, 0.0], [0.5, 0.0], [2.0, 0.0]], 10, 10, 0.1, 5, num_chains=3, backend="torch")
    gradient = TorchTarget(lambda x: _standard_normal(x) + 0.0 * torch.sqrt(x[:, 0]), 2,
                           check_point=np.ones(2))  # d sqrt / dx = inf at 0
    with pytest.raises(ValueError, match="the log density's gradient is not finite at chain 0's start"):
        hmc.sample(gradient, [0.0, 1.0], 10, 10, 0.1, 5, backend="torch")


def test_targets_without_a_torch_face_and_torch_targets_elsewhere():
    from pyvi.targets import LogDensity

    target = LogDensity(lambda x: -0.5 * float(x @ x), lambda x: -x, dim=2)
    with pytest.raises(TypeError, match=r"LogDensity cannot run on backend 'torch'.*use backend='numpy'"):
        hmc.sample(target, [0.0, 0.0], 10, 10, 0.1, 5, backend="torch")
    user = TorchTarget(_standard_normal, 2)
    with pytest.raises(TypeError, match=r"TorchTarget cannot run on backend 'cpp'.*use backend='torch' or 'numpy'"):
        hmc.sample(user, [0.0, 0.0], 10, 10, 0.1, 5, backend="cpp")


def test_torch_target_on_the_numpy_backend_and_its_faces():
    user = TorchTarget(_standard_normal, 2)
    log_prob, grad = user.log_prob_and_grad(np.array([[1.0, 2.0], [0.0, -1.0]]))
    np.testing.assert_array_equal(log_prob, [-2.5, -0.5])
    np.testing.assert_array_equal(grad, [[-1.0, -2.0], [0.0, 1.0]])
    assert user.torch_log_prob() is _standard_normal and user.fused_log_joint() is None
    assert user.cpp_target() is None and "TorchTarget(_standard_normal, dim=2)" == repr(user)
    result = hmc.sample(user, [0.0, 0.0], num_samples=2000, num_warmup=200, step_size=0.3, num_steps=5,
                        random_steps=True, num_chains=2, seed=0, backend="numpy")
    assert abs(result.flat_samples().mean()) < 0.1 and abs(result.flat_samples().var() - 1.0) < 0.1
