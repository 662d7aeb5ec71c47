"""NUTS: the C++ and Numba trees equal draw for draw and equal to the recursive numpy reference on
the same random numbers; invariance of the target (one transition from exact draws); known moments
within Monte Carlo error for every metric; the dense metric's payoff; Stan's windows; max depth,
divergences, warm-up rows, thinning and bad input.

The native runs reuse a few compiled Numba specialisations (a Gaussian and the banana face), so
the file's compile cost is paid once."""

import math

import numpy as np
import pytest

from pyvi import hmc
from pyvi.hmc import reference_nuts
from pyvi.diagnostics import score
from pyvi.targets import Funnel, Gaussian, GaussianMixture

# The runs' quality is asserted directly (moments, divergences); short runs would warn (HMCWarning).
pytestmark = pytest.mark.filterwarnings("ignore::pyvi.hmc.HMCWarning")

SCALES = np.array([1e-2, 1.0, 1e2])
DIAGONAL = Gaussian(np.zeros(3), np.diag(SCALES**2))


def _moments_ok(result, mean, cov, z=4.5):
    """Mean and variances within z Monte Carlo standard errors (SEs from the bulk ESS)."""
    flat = result.flat_samples()
    ess = np.minimum(result.ess_bulk, len(flat))
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(flat.mean(axis=0) - mean), z * sd / np.sqrt(ess))
    centred = (flat - mean) ** 2
    se = centred.std(axis=0) / np.sqrt(ess)
    np.testing.assert_array_less(np.abs(centred.mean(axis=0) - np.diag(cov)), z * se)


# -- the two native backends and the reference agree -------------------------------------------


@pytest.mark.parametrize("metric", ["identity", "diag", "dense"])
def test_cpp_equals_numba_bit_for_bit(metric):
    kwargs = dict(num_samples=60, num_warmup=160, num_chains=3, seed=7, metric=metric, save_warmup=True, thin=2,
                  init_jitter=0.5)
    cpp = hmc.nuts(DIAGONAL, np.zeros(3), backend="cpp", **kwargs)
    numba = hmc.nuts(DIAGONAL, np.zeros(3), backend="numba", **kwargs)
    for name in ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "tree_depth", "energy",
                 "energy_error", "step_size", "inv_metric", "warmup_samples", "warmup_energy"):
        np.testing.assert_array_equal(getattr(cpp, name), getattr(numba, name), err_msg=name)
    assert cpp.samples.shape == (3, 30, 3) and cpp.warmup_samples.shape == (3, 80, 3)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_draws_never_depend_on_the_chunks(backend):
    """A run cut into chunks of iterations (progress reported between them) gives the same draws as
    one call: every chain's state, warm-up included, is kept between chunks."""
    from pyvi.hmc import nuts_run

    settings = nuts_run.NutsSettings.validated(num_samples=30, num_warmup=160, thin=1, save_warmup=True,
                                               step_size=1.0, max_tree_depth=10, metric="dense",
                                               adapt_step_size=True, adapt_metric=True, target_accept=0.8, seed=3)
    run = nuts_run.run_cpp if backend == "cpp" else nuts_run.run_numba
    face = DIAGONAL.cpp_target() if backend == "cpp" else DIAGONAL.numba_target()
    initial = np.ones((2, 3))
    whole = run(face, initial, settings, 1)
    seen = []
    cut = run(face, initial, settings, 2, progress=lambda done, total: seen.append((done, total)), chunks=[1, 7, 30])
    for name in whole:
        np.testing.assert_array_equal(whole[name], cut[name], err_msg=name)
    assert seen[-1] == (190, 190)
    try:
        import pyvi.hmc.chunks  # noqa: F401  (the chunked driver: the cut above is used)
    except ImportError:
        return
    assert len(seen) > 3


def test_progress_bar_and_callback(capsys):
    seen = []
    hmc.nuts(DIAGONAL, np.ones(3), num_samples=50, num_warmup=50, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (100, 100)
    hmc.nuts(DIAGONAL, np.ones(3), num_samples=50, num_warmup=50, num_chains=2, progress=True)
    assert "nuts (cpp)" in capsys.readouterr().err
    hmc.nuts(DIAGONAL, np.ones(3), num_samples=50, num_warmup=50, progress=False)
    with pytest.raises(TypeError, match="progress"):
        hmc.nuts(DIAGONAL, np.ones(3), num_samples=50, num_warmup=50, progress="yes")


def test_threads_never_matter(default_banana):
    kwargs = dict(num_samples=50, num_warmup=50, num_chains=3, seed=3)
    one = hmc.nuts(default_banana, [1.0, 0.5], backend="cpp", num_threads=1, **kwargs)
    many = hmc.nuts(default_banana, [1.0, 0.5], backend="cpp", num_threads=3, **kwargs)
    np.testing.assert_array_equal(one.samples, many.samples)
    numba_one = hmc.nuts(DIAGONAL, np.ones(3), backend="numba", num_threads=1, **kwargs)
    numba_many = hmc.nuts(DIAGONAL, np.ones(3), backend="numba", num_threads=2, **kwargs)
    np.testing.assert_array_equal(numba_one.samples, numba_many.samples)


class _XoshiroStream:
    """The native backends' stream (seed, chain) for the numpy reference."""

    def __init__(self, seed, chain):
        from pyvi._numba.rng import seed_state

        self.state = seed_state(np.uint64(seed), np.uint64(chain))

    def uniform(self):
        from pyvi._numba.rng import uniform

        return uniform(self.state)

    def normals(self, d):
        from pyvi._numba.rng import normals

        out = np.empty(d)
        normals(self.state, out)
        return out


class _NativeDensity:
    """A target whose numpy face is its C++ face (bit-identical log p and gradient)."""

    def __init__(self, target):
        self.dim, self.face = target.dim, target.cpp_target()

    def log_prob_and_grad(self, x):
        from pyvi._core import log_prob_and_grad

        return log_prob_and_grad(self.face, x)


@pytest.mark.parametrize("metric", ["identity", "diag", "dense"])
def test_recursive_reference_equals_the_iterative_tree(metric):
    """Stan's recursion (numpy) and the leaf-by-leaf tree (C++) make the same choices given the same
    random numbers: warm-up with the step-size search, windows and metric updates included."""
    gaussian = Gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 2.0]])
    target = _NativeDensity(gaussian)  # the reference evaluates log p exactly as C++ does
    settings = dict(num_samples=40, num_warmup=150, thin=1, save_warmup=True, step_size=1.0, max_tree_depth=10,
                    metric=metric, adapt_step_size=True, adapt_metric=True, target_accept=0.8)
    native = hmc.nuts(gaussian, [2.0, 2.0], backend="cpp", num_chains=1, seed=5,
                      **{k: v for k, v in settings.items() if k != "step_size"})
    rows, step_size, inv_mass = reference_nuts.sample_chain(_XoshiroStream(5, 0), target, np.array([2.0, 2.0]),
                                                            settings, hmc.MAX_ENERGY_ERROR, (75, 50, 25))
    draws = np.array([x for x, _, _ in rows])
    native_draws = np.concatenate([native.warmup_samples[0], native.samples[0]])
    np.testing.assert_array_equal([info.num_steps for _, _, info in rows],
                                  np.concatenate([native.warmup_num_steps[0], native.num_steps[0]]))
    np.testing.assert_allclose(draws, native_draws, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(step_size, native.step_size[0], rtol=1e-9)
    np.testing.assert_allclose(inv_mass, native.inv_metric[0], rtol=1e-9)


def test_static_hmc_with_a_metric_cpp_equals_numba_and_the_reference():
    """kernel="hmc" with a diagonal or dense metric runs on the same per-chain driver and warm-up."""
    kwargs = dict(step_size=0.3, num_steps=7, random_steps=True, num_chains=2, seed=4, save_warmup=True)
    for metric in ("diag", "dense"):
        cpp = hmc.sample(DIAGONAL, np.ones(3), 50, 150, backend="cpp", metric=metric, **kwargs)
        numba = hmc.sample(DIAGONAL, np.ones(3), 50, 150, backend="numba", metric=metric, **kwargs)
        for name in ("samples", "energy", "energy_error", "num_steps", "step_size", "inv_metric", "warmup_samples"):
            np.testing.assert_array_equal(getattr(cpp, name), getattr(numba, name), err_msg=name)
        assert np.all(cpp.tree_depth == 0) and np.all(cpp.num_steps <= 7)
    gaussian = Gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 2.0]])
    settings = dict(num_samples=40, num_warmup=150, thin=1, save_warmup=True, step_size=0.3, max_tree_depth=10,
                    metric="diag", adapt_step_size=True, adapt_metric=True, target_accept=0.8, kernel="hmc",
                    num_steps=5, random_steps=True)
    native = hmc.sample(gaussian, [2.0, 2.0], 40, 150, 0.3, 5, random_steps=True, metric="diag", save_warmup=True,
                        seed=5)
    rows, step_size, inv_mass = reference_nuts.sample_chain(_XoshiroStream(5, 0), _NativeDensity(gaussian),
                                                            np.array([2.0, 2.0]), settings, hmc.MAX_ENERGY_ERROR,
                                                            (75, 50, 25))
    np.testing.assert_allclose([x for x, _, _ in rows], np.concatenate([native.warmup_samples[0], native.samples[0]]),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(inv_mass, native.inv_metric[0], rtol=1e-9)


def test_static_hmc_with_the_diag_metric_gets_the_moments():
    result = hmc.sample(DIAGONAL, np.ones(3), 1000, 1000, 0.1, 10, random_steps=True, metric="diag", num_chains=4,
                        seed=3)
    assert result.num_divergent == 0
    _moments_ok(result, np.zeros(3), np.diag(SCALES**2))
    np.testing.assert_allclose(result.inv_metric, np.broadcast_to(SCALES**2, (4, 3)), rtol=0.35)


# -- correctness of the transition ---------------------------------------------------------------


def test_leapfrog_step_is_reversible():
    target = Gaussian([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]])
    metric = reference_nuts.Metric()
    metric.set(np.array([[2.0, 0.5], [0.5, 1.0]]))
    x = np.array([0.3, -0.7])
    log_prob, grad = target.log_prob_and_grad(x)
    z = reference_nuts.Point(x.copy(), np.array([0.4, 1.1]), log_prob, grad)
    for eps in (0.2, 0.2, 0.2, -0.2, -0.2, -0.2):
        reference_nuts._leapfrog_step(target, metric, z, eps)
    np.testing.assert_allclose(z.x, x, atol=1e-13)
    np.testing.assert_allclose(z.p, [0.4, 1.1], atol=1e-13)


@pytest.mark.parametrize("metric", ["identity", "dense"])
def test_one_transition_leaves_the_target_invariant(metric):
    """Detailed balance on a small case: 2-D Gaussian draws moved by one transition with a
    fixed step and a tree of at most 2^3 steps are still distributed as the target."""
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    target = Gaussian([1.0, -1.0], cov)
    n = 20000
    start = np.random.default_rng(0).multivariate_normal([1.0, -1.0], cov, size=n)
    result = hmc.nuts(target, start, num_samples=1, num_warmup=0, num_chains=n, step_size=0.9, max_tree_depth=3,
                      metric=metric, adapt_step_size=False, seed=2)
    moved = result.samples[:, 0]
    assert np.mean(np.any(moved != start, axis=1)) > 0.9  # the transition does move the points
    se_mean = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(moved.mean(axis=0) - [1.0, -1.0]), 4.5 * se_mean)
    se_var = np.sqrt(2.0 / n) * np.diag(cov)
    np.testing.assert_array_less(np.abs(moved.var(axis=0) - np.diag(cov)), 4.5 * se_var)
    from scipy import stats

    for i in range(2):  # the marginals, not just two moments
        assert stats.kstest(moved[:, i], "norm", args=([1.0, -1.0][i], math.sqrt(cov[i, i]))).pvalue > 1e-3


def test_max_tree_depth_is_counted():
    result = hmc.nuts(Gaussian(np.zeros(3), np.eye(3)), np.ones(3), num_samples=100, num_warmup=0, num_chains=2, step_size=1e-3,
                      adapt_step_size=False, max_tree_depth=2, seed=1)
    assert np.all(result.tree_depth == 2)
    assert np.all(result.num_steps == 3)  # 1 + 2 steps
    assert result.num_max_tree_depth == 200
    assert result.summary()["num_max_tree_depth"] == 200
    from pyvi.hmc import checks

    assert any("max_tree_depth=2" in message for message in checks.problems(result))


# -- moments on targets the metric must handle ---------------------------------------------------


def test_diagonal_gaussian_with_scales_from_0_01_to_100_needs_the_diag_metric():
    result = hmc.nuts(DIAGONAL, np.ones(3), num_samples=1000, num_warmup=1000, num_chains=4, seed=4)
    assert result.num_divergent == 0
    assert np.all(result.rhat < 1.01)
    _moments_ok(result, np.zeros(3), np.diag(SCALES**2))
    # The windows' estimate of M^-1 converges to the true variances.
    np.testing.assert_allclose(result.inv_metric, np.broadcast_to(SCALES**2, (4, 3)), rtol=0.35)
    assert result.tree_depth.mean() < 3.0


def test_dense_metric_needs_far_fewer_steps_on_a_correlated_gaussian():
    rho = 0.99
    target = Gaussian([0.0, 0.0], [[1.0, rho], [rho, 1.0]])
    steps = {}
    for metric in ("identity", "dense"):
        result = hmc.nuts(target, [0.0, 0.0], num_samples=1000, num_warmup=1000, num_chains=4, seed=6, metric=metric)
        _moments_ok(result, np.zeros(2), target.cov)
        steps[metric] = result.num_steps.mean()
    assert steps["identity"] > 3.0 * steps["dense"], steps


def test_banana_exact_moments(homework_banana):
    mean, cov = homework_banana.posterior_moments()
    # The curved ridge narrows where theta2 is large: a higher target acceptance (a smaller step) keeps
    # the leapfrog stable there (at 0.8, ~2% of the transitions diverge).
    result = hmc.nuts(homework_banana, [1.0, 0.0], num_samples=1000, num_warmup=1000, num_chains=4, seed=8,
                      target_accept=0.95)
    assert result.num_divergent < 20
    assert np.all(result.rhat < 1.02)  # theta2's two arms of the banana
    _moments_ok(result, mean, cov)


def _score_ok(result, target):
    """The draws' k-NN KL divergence to as many exact draws within its bias margin and 3 standard
    errors of 0 (as for exact draws in tests/test_ground_truth.py)."""
    scored = score(result, target)
    assert abs(scored.kl) < 0.05 + 3 * scored.kl_standard_error, scored


def test_non_centred_funnel_on_the_numpy_reference():
    """pyvi.targets.Funnel non-centred: the sampler sees (v / 3, x~) ~ N(0, I), exactly."""
    funnel = Funnel(5, centred=False)
    result = hmc.nuts(funnel, np.zeros(5), num_samples=300, num_warmup=300, num_chains=2, seed=9, backend="numpy")
    assert result.num_divergent == 0
    _moments_ok(result, *funnel.posterior_moments())
    _score_ok(result, funnel)
    # In the funnel's own coordinates: v ~ N(0, 3^2).
    v = funnel.to_funnel(result.flat_samples())[:, 0]
    assert abs(v.var() - 9.0) < 4.5 * 9.0 * math.sqrt(2.0 / min(result.ess_bulk[0], len(v)))


def test_centred_funnel_reports_divergences_and_never_nan():
    with pytest.warns(hmc.HMCWarning, match="diverged"):
        result = hmc.nuts(Funnel(5, centred=True), np.ones(5), num_samples=300, num_warmup=300, num_chains=2,
                          seed=1, backend="numpy")
    assert result.num_divergent > 0
    assert np.all(np.isfinite(result.samples)) and np.all(np.isfinite(result.log_prob))


def test_two_well_separated_modes_within_one_chains_reach():
    """pyvi.targets.GaussianMixture of N(-2, 0.6^2) and N(2, 0.6^2) (0.3 / 0.7): both modes visited
    in proportion, the draws as close to exact ones as exact ones are."""
    weights, means, sd = np.array([0.3, 0.7]), np.array([-2.0, 2.0]), 0.6
    mixture = GaussianMixture(weights, means[:, None], np.full((2, 1, 1), sd**2))
    result = hmc.nuts(mixture, [0.0], num_samples=1000, num_warmup=300, num_chains=2, seed=3, backend="numpy")
    flat = result.flat_samples()[:, 0]
    exact_mean = weights @ means
    ess = min(result.ess_bulk[0], len(flat))
    assert abs(flat.mean() - exact_mean) < 4.5 * math.sqrt(weights @ (means**2 + sd**2) - exact_mean**2) / math.sqrt(ess)
    assert 0.15 < np.mean(flat < 0) < 0.45
    np.testing.assert_allclose(mixture.posterior_moments()[0], [exact_mean])
    _score_ok(result, mixture)


def test_logistic_regression():
    """Issue #11's user model (breast cancer, 569 x 31, correlated coefficients) as a NumbaTarget on
    the cpp backend (through its cfunc): NUTS with the diag metric and static HMC agree on all 31
    posterior means within Monte Carlo error (z = 4.5 from the bulk ESS of both runs)."""
    from pyvi.models import LogisticRegression
    from pyvi.models.logistic_regression import logistic_log_joint
    from pyvi.targets import NumbaTarget

    model = LogisticRegression.breast_cancer()
    user = NumbaTarget(logistic_log_joint, model.dim, data=model.data)
    result = hmc.nuts(user, np.zeros(model.dim), num_samples=500, num_warmup=500, num_chains=4, seed=4,
                      backend="cpp")
    assert result.num_divergent == 0 and np.all(result.rhat < 1.05)
    static = hmc.sample(user, np.zeros(model.dim), num_samples=600, num_warmup=300, step_size=0.05, num_steps=10,
                        random_steps=True, num_chains=4, seed=2, backend="cpp")
    a, b = result.flat_samples(), static.flat_samples()
    se = np.sqrt(a.var(axis=0) / result.ess_bulk + b.var(axis=0) / static.ess_bulk)
    z = np.abs(a.mean(axis=0) - b.mean(axis=0)) / se
    assert z.max() < 4.5, z.round(2)
    # NUTS's point: fewer gradients per effective draw than the hand-tuned static run (10 steps).
    assert result.num_steps.sum() / result.ess_bulk.min() < 10 * 600 * 4 / static.ess_bulk.min()


# -- warm-up -------------------------------------------------------------------------------------


def test_stans_windows_and_the_fallbacks():
    windows = reference_nuts.WindowSchedule(1000, 75, 50, 25, True).windows()
    assert windows == [(75, 99), (100, 149), (150, 249), (250, 449), (450, 949)]
    # Too short for 75 + 25 + 50: Stan's 15% / 75% / 10% split.
    assert reference_nuts.WindowSchedule(100, 75, 50, 25, True).windows() == [(15, 89)]
    assert reference_nuts.WindowSchedule(19, 75, 50, 25, True).windows() == []


def test_short_warmup_takes_the_fallback_and_still_samples():
    result = hmc.nuts(DIAGONAL, np.ones(3), num_samples=20, num_warmup=100, num_chains=1, seed=2)
    assert not np.allclose(result.inv_metric, 1.0)  # one window ran
    result = hmc.nuts(DIAGONAL, np.ones(3), num_samples=20, num_warmup=10, num_chains=1, seed=2)
    np.testing.assert_array_equal(result.inv_metric, 1.0)  # < 20: no metric estimate


def test_adaptation_can_be_turned_off():
    result = hmc.nuts(DIAGONAL, np.ones(3), num_samples=5, num_warmup=200, num_chains=1, step_size=0.01,
                      adapt_step_size=False, adapt_metric=False)
    np.testing.assert_array_equal(result.step_size, [0.01])
    np.testing.assert_array_equal(result.inv_metric, 1.0)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel="mala"), ValueError, "kernel"),
    (dict(kernel="nuts", metric="full"), ValueError, "metric"),
    (dict(kernel="nuts", max_tree_depth=0), ValueError, "max_tree_depth"),
    (dict(kernel="nuts", thin=0), ValueError, "thin"),
    (dict(kernel="nuts", num_steps=10), ValueError, "num_steps"),
    (dict(kernel="nuts", init_jitter=-1.0), ValueError, "init_jitter"),
    (dict(kernel="nuts", save_warmup=1), TypeError, "save_warmup"),
    (dict(kernel="hmc", step_size=0.1, num_steps=5, metric="full"), ValueError, "metric"),
    (dict(kernel="hmc", step_size=0.1, num_steps=5, thin=0), ValueError, "thin"),
    (dict(kernel="hmc", step_size=0.1, num_steps=5, max_tree_depth=5), ValueError, "max_tree_depth"),
    (dict(kernel="hmc", step_size=0.1, num_steps=5, metric="diag", backend="torch"), ValueError, "torch"),
    (dict(kernel="hmc"), TypeError, "num_steps"),
    (dict(kernel="nuts", backend="torch"), ValueError, "torch"),
    (dict(kernel="nuts", device="cpu"), ValueError, "device"),
])
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        hmc.sample(DIAGONAL, np.ones(3), 10, 10, **kwargs)
