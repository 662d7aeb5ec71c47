"""After a run (issue #15 items 16, 17): warnings on divergences, R-hat and low ESS, none on
well-behaved runs; the result's one-line repr and printable summary; ``step_size`` shown as the
initial value it is when the step adapts. And the run's inputs (items 10, 21): complex numbers,
log densities that return an array, ``seed=None``."""

import json
import re
import warnings

import numpy as np
import pytest

from pyvi import hmc
from pyvi.hmc import HMCWarning, checks
from pyvi.targets import Banana, Gaussian, LogDensity, Target

BACKENDS = ["cpp", "numba", "numpy"]
STANDARD = Gaussian(np.zeros(2), np.eye(2))
#: The README tour's run, as it was: dual averaging (on by default) takes the step from 0.05 to ~0.11,
#: which diverges in the banana's tails.
TOUR = dict(num_samples=500, num_warmup=500, step_size=0.05, num_steps=30, num_chains=4, seed=1)


def _run(target, initial, **kwargs):
    """(result, [messages of the HMCWarnings it raised])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = hmc.sample(target, initial, **kwargs)
    assert all(w.category is HMCWarning for w in caught), [w.category for w in caught]
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergences_warn_and_say_the_step_was_adapted(default_banana, backend):
    result, messages = _run(default_banana, [1.0, 0.5], backend=backend, **TOUR)
    assert result.num_divergent > 0
    assert len(messages) == 1, messages
    assert re.match(rf"{result.num_divergent} of 2000 transitions after warm-up diverged \(energy error > 1000",
                    messages[0])
    assert "step size adapted from 0.05 to" in messages[0] and "only the initial value" in messages[0]
    assert "adapt_step_size=False" in messages[0]


def test_chains_that_disagree_warn_on_rhat_and_ess():
    # Two chains 100 sd apart that have not mixed (tiny fixed step, no warm-up).
    _, messages = _run(STANDARD, [[-50.0, 0.0], [50.0, 0.0]], num_samples=200, num_warmup=0, step_size=0.01,
                       num_steps=1, num_chains=2, adapt_step_size=False, seed=0)
    assert len(messages) == 2, messages
    assert re.match(r"split R-hat is \d\.\d{3} > 1\.01 in dimensions 0, 1: the chains disagree", messages[0])
    assert re.match(r"bulk ESS is \d+ < 100 per chain \(200 for 2 chains\) in dimensions 0, 1", messages[1])


def test_a_periodic_trajectory_warns_on_ess():
    """Issue #15 item 17: fixed L = 5 with the adapted step makes L * step ~ 2 pi on N(0, I), a
    trajectory that returns near its start: bulk ESS far below 100 per chain, with no warning before.
    The warning points at random_steps, which fixes it."""
    kwargs = dict(num_samples=1000, num_warmup=1000, step_size=0.1, num_steps=5, num_chains=4, seed=0)
    result, messages = _run(STANDARD, [0.0, 0.0], **kwargs)
    assert np.all(np.abs(5 * result.step_size - 2 * np.pi) < 0.3)
    assert any(m.startswith("bulk ESS is") and "random_steps=True" in m for m in messages), messages
    fixed, messages = _run(STANDARD, [0.0, 0.0], random_steps=True, **kwargs)
    assert messages == [] and fixed.ess_bulk.min() > 1000


@pytest.mark.parametrize("backend", BACKENDS)
def test_well_behaved_runs_do_not_warn(default_banana, backend):
    # The README tour and the docstring: the homework's fixed step 0.05 on the banana.
    _, messages = _run(default_banana, [1.0, 0.5], backend=backend, **{**TOUR, "step_size": 0.05},
                       adapt_step_size=False)
    assert messages == []
    # The report's runs (pyvi/app/pipeline/hmc.py): the short homework chain and the long run.
    _, messages = _run(default_banana, [1.0, 0.5], num_samples=500, num_warmup=500, step_size=0.05, num_steps=30,
                       adapt_step_size=False, seed=0, backend=backend)
    assert messages == []
    if backend != "numpy":
        initial = np.random.default_rng(0).normal(size=(4, 2))
        _, messages = _run(default_banana, initial, num_samples=10_000, num_warmup=10_000, step_size=0.05,
                           num_steps=30, num_chains=4, adapt_step_size=False, seed=1, backend=backend)
        assert messages == []
    # An adapted run with random path lengths on a Gaussian.
    _, messages = _run(Gaussian([1.0, -1.0], [[1.0, 0.8], [0.8, 2.0]]), [0.0, 0.0], num_samples=1000, num_warmup=500,
                       step_size=0.2, num_steps=10, random_steps=True, num_chains=4, seed=11, backend=backend)
    assert messages == []


def test_warnings_are_easy_to_silence(default_banana):
    assert _run(default_banana, [1.0, 0.5], warn=False, **TOUR)[1] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything else still fails the test
        warnings.simplefilter("ignore", HMCWarning)
        hmc.sample(default_banana, [1.0, 0.5], **TOUR)
    with pytest.raises(TypeError, match="warn must be a bool"):
        hmc.sample(default_banana, [1.0, 0.5], warn="no", **TOUR)


def test_short_runs_are_not_judged_by_rhat_and_ess():
    result, messages = _run(STANDARD, [[-50.0, 0.0], [50.0, 0.0]], num_samples=99, num_warmup=0, step_size=0.01,
                            num_steps=1, num_chains=2, adapt_step_size=False, seed=0)
    assert messages == []
    assert result.summary()["notes"] == ["99 draws per chain: too few to check R-hat and ESS (the checks need 100)"]
    assert checks.MIN_DRAWS_TO_CHECK == 100


def test_repr_is_one_short_line_with_the_step_sizes(default_banana):
    """Issue #15 item 16: the tour's step_size=0.05 became ~0.11 without a word; the repr shows both."""
    result = hmc.sample(default_banana, [1.0, 0.5], warn=False, **TOUR)
    text = repr(result)
    assert "\n" not in text and len(text) < 160
    assert re.fullmatch(r"HMCResult\(cpp: 4 chains x 500 draws, dim 2; step size 0\.05 adapted to 0\.1\d*\.\.0\.1\d*; "
                        r"acceptance 0\.\d{3}; \d+ divergent\)", text), text
    fixed = hmc.sample(default_banana, [1.0, 0.5], adapt_step_size=False, warn=False, **TOUR)
    assert "step size 0.05 (fixed)" in repr(fixed)


def test_summary_prints_a_table_and_stays_a_json_dict(default_banana):
    result = hmc.sample(default_banana, [1.0, 0.5], warn=False, **TOUR)
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary
    text = str(summary)
    lines = text.splitlines()
    assert lines[0] == "HMC (cpp): 4 chains x 500 draws after 500 warm-up"
    assert lines[1].startswith("step size: 0.05 initial, adapted during warm-up to 0.1")
    assert re.match(rf"acceptance 0\.\d{{3}} \(target 0\.8\); divergent transitions: {result.num_divergent} of 2000",
                    lines[2])
    assert lines[4].split() == ["mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail",
                                "r_hat"]  # ArviZ's summary columns
    for k in range(2):
        label, mean, sd, _, _, _, _, ess, _, rhat = lines[5 + k].split()
        assert label == f"x[{k}]" and float(rhat) == pytest.approx(result.rhat[k], abs=5e-4)
        assert float(mean) == pytest.approx(result.flat_samples()[:, k].mean(), rel=1e-3)
        assert float(ess) == pytest.approx(result.ess_bulk[k], abs=0.5)
    assert lines[7].startswith("note: ") and "diverged" in lines[7]
    assert repr(summary) == text
    assert len(lines) < 12  # not 74 lines of arrays


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_none_draws_a_seed_and_records_it(default_banana, backend):
    """Issue #15 item 21: seed=None was refused; now it draws one from the OS and records it."""
    kwargs = dict(num_samples=100, num_warmup=50, step_size=0.05, num_steps=10, adapt_step_size=False,
                  backend=backend, warn=False)
    first = hmc.sample(default_banana, [1.0, 0.5], seed=None, **kwargs)
    second = hmc.sample(default_banana, [1.0, 0.5], seed=None, **kwargs)
    seed = first.settings["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**64 and seed != second.settings["seed"]
    again = hmc.sample(default_banana, [1.0, 0.5], seed=seed, **kwargs)
    np.testing.assert_array_equal(again.samples, first.samples)


@pytest.mark.parametrize("backend", BACKENDS)
def test_complex_input_is_a_type_error_not_its_real_part(default_banana, backend):
    """Issue #15 item 10: complex input was cast to its real part (a ComplexWarning at most)."""
    with pytest.raises(TypeError, match=r"initial must hold real numbers, got complex values \(complex128\)"):
        hmc.sample(default_banana, np.array([1.0 + 1j, 0.5]), 10, 10, 0.05, 5, backend=backend)
    with pytest.raises(TypeError, match="initial must hold real numbers"):
        hmc.sample(default_banana, [1.0 + 0j, 0.5], 10, 10, 0.05, 5, backend=backend)
    with pytest.raises(TypeError, match="position must hold real numbers"):
        hmc.leapfrog(default_banana, np.array([1.0, 0.5j]), [0.0, 0.0], 0.1, 3, backend=backend)
    with pytest.raises(TypeError, match="step_size must be a real number"):
        hmc.sample(default_banana, [1.0, 0.5], 10, 10, 0.05 + 0j, 5, backend=backend)


def test_complex_target_parameters_are_type_errors():
    with pytest.raises(TypeError, match="y must hold real numbers"):
        Banana(np.array([1.0, 2.0 + 1j]))
    with pytest.raises(TypeError, match="mean must hold real numbers"):
        Gaussian(np.array([0.0j, 0.0]), np.eye(2))
    with pytest.raises(TypeError, match="cov must hold real numbers"):
        Gaussian(np.zeros(2), np.eye(2, dtype=complex))
    import torch

    with pytest.raises(TypeError, match="initial must hold real numbers"):
        hmc.sample(STANDARD, torch.zeros(2, dtype=torch.complex128), 10, 10, 0.1, 5)
    # (LogDensity calls both functions at construction, at check_point, and checks them there.)
    with pytest.raises(TypeError, match="grad_fn must return real numbers, got dtype complex128"):
        LogDensity(lambda x: -0.5 * float(x @ x), lambda x: -x.astype(complex), dim=2)
    with pytest.raises(TypeError, match="logdensity_fn must return one real number .* got complex"):
        LogDensity(lambda x: complex(-0.5 * float(x @ x)), lambda x: -x, dim=2)


def test_a_log_density_returning_an_array_is_named():
    """Issue #15 item 21: a 1-element array gave numpy's "only 0-dimensional arrays can be
    converted to Python scalars", naming nothing."""
    with pytest.raises(TypeError, match=r"logdensity_fn must return one real number \(a float or a 0-d array\), "
                                        r"got an array of shape \(1,\); index the result"):
        LogDensity(lambda x: -0.5 * np.atleast_1d(x @ x), lambda x: -x, dim=2)  # checked at construction
    scalar = LogDensity(lambda x: np.float32(-0.5 * x @ x), lambda x: -x, dim=2)
    assert scalar.log_prob_and_grad(np.ones(2)) == (-1.0, pytest.approx(-np.ones(2)))
    assert type(scalar.log_prob_and_grad(np.ones(2))[0]) is float


def test_a_target_returning_an_array_is_named():
    class Batched(Target):
        dim = 2

        def log_prob_and_grad(self, x):
            return np.array([-0.5 * x @ x]), -x

    with pytest.raises(TypeError, match=r"Batched.log_prob_and_grad must return log p as one real number, got an "
                                        r"array of shape \(1,\) at chain 0's start"):
        hmc.sample(Batched(), [0.0, 0.0], 10, 10, 0.1, 5, backend="numpy")

    class WrongGradient(Target):
        dim = 2

        def log_prob_and_grad(self, x):
            return -0.5 * float(x @ x), -x[:1]

    with pytest.raises(TypeError, match=r"WrongGradient.log_prob_and_grad must return a real gradient of shape \(2,\)"):
        hmc.sample(WrongGradient(), [0.0, 0.0], 10, 10, 0.1, 5, backend="numpy")
