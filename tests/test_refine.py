"""MCMC refinement: the exact posterior stays invariant; a bad q moves towards p."""

import numpy as np
import pytest

from pyvi.refine import mcmc_refine


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_exact_posterior_is_invariant(homework_banana, backend):
    start = homework_banana.sample_exact(20000, seed=0)
    refined = mcmc_refine(start, homework_banana, 5, 0.05, 20, seed=1, backend=backend)
    mean, cov = homework_banana.posterior_moments()
    n = start.shape[0]
    for t in range(6):
        draws = refined.samples[t]
        # i.i.d. start and independent chains: each time slice is n i.i.d. draws from p.
        assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * np.sqrt(np.diag(cov) / n))
        for k in range(2):
            centred = (draws[:, k] - mean[k]) ** 2
            assert abs(centred.mean() - cov[k, k]) < 4.5 * centred.std() / np.sqrt(n)
    assert refined.accept_prob.mean() > 0.9


def test_bad_start_moves_towards_posterior(homework_banana):
    start = np.random.default_rng(0).normal(loc=[2.0, 0.0], scale=0.1, size=(5000, 2))  # far off
    refined = mcmc_refine(start, homework_banana, 30, 0.05, 20, seed=2)
    mean, _ = homework_banana.posterior_moments()
    errors = [abs(refined.samples[t, :, 0].mean() - mean[0]) for t in (0, 5, 30)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05


def test_zero_transitions_and_bad_input(default_banana):
    start = default_banana.sample_exact(10, seed=0)
    refined = mcmc_refine(start, default_banana, 0, 0.05, 10)
    assert refined.samples.shape == (1, 10, 2) and refined.accept_prob.shape == (0, 10)
    np.testing.assert_array_equal(refined.samples[0], start)
    with pytest.raises(ValueError, match="samples must be a 2-D"):
        mcmc_refine(start[0], default_banana, 1, 0.05, 10)
    with pytest.raises(ValueError, match="num_transitions"):
        mcmc_refine(start, default_banana, -1, 0.05, 10)
    with pytest.raises(ValueError, match="samples must hold"):
        mcmc_refine(np.zeros((0, 2)), default_banana, 1, 0.05, 10)
    with pytest.raises(ValueError, match="step_size"):
        mcmc_refine(start, default_banana, 1, -0.05, 10)


def test_knn_kl_to_exact_draws_stays_near_zero(homework_banana):
    """Problem 1's equality case: q = p stays p, so the k-NN KL to fresh exact draws stays ~0 for
    every t (|estimate| within 3 standard errors plus 0.01 for the estimator's small-sample bias;
    a 10% error in the scale of theta1 gives 0.057 here, so the bound would catch it)."""
    from pyvi.divergence import knn_kl_estimate

    start = homework_banana.sample_exact(5000, seed=3)
    reference = homework_banana.sample_exact(5000, seed=4)
    refined = mcmc_refine(start, homework_banana, 10, 0.05, 20, seed=5)
    for t in (0, 1, 5, 10):
        estimate = knn_kl_estimate(refined.samples[t], reference, k=5, num_threads=1)
        assert abs(estimate.value) < 3 * estimate.standard_error + 0.01, (t, estimate.value, estimate.standard_error)
