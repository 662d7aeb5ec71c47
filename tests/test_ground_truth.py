"""score(): near 0 for exact draws, clearly positive for biased ones; any sampler's layout."""

import numpy as np
import pytest

from pyvi import diagnostics
from pyvi.ground_truth import as_chains, score
from pyvi.targets import Gaussian, LogDensity

TARGET = Gaussian([0.0, 1.0, -1.0], [[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]])


def test_exact_draws_score_near_zero():
    result = score(TARGET.sample_exact(4000, seed=3).reshape(4, 1000, 3), TARGET, seed=7)
    assert abs(result.kl) < 0.05 + 3 * result.kl_standard_error
    assert result.max_abs_mean_error < 4 / np.sqrt(4000) and result.max_abs_sd_error < 0.06
    assert np.all(result.ess_bulk > 3000) and np.all(result.ess_tail > 2500)
    assert result.num_draws == result.num_exact == 4000


def test_biased_draws_score_clearly_positive():
    draws = TARGET.sample_exact(4000, seed=3)
    shifted = score(draws + 0.5 * np.sqrt(np.diag(TARGET.cov)), TARGET)  # half an sd off in every dimension
    narrow = score(TARGET.mean + 0.6 * (draws - TARGET.mean), TARGET)  # 40% too narrow
    offset = 0.5 * np.sqrt(np.diag(TARGET.cov))
    exact_kl = 0.5 * offset @ np.linalg.solve(TARGET.cov, offset)  # 0.24
    assert abs(shifted.kl - exact_kl) < 0.05 and shifted.kl > 10 * shifted.kl_standard_error and np.allclose(shifted.mean_error, 0.5, atol=0.1)
    assert narrow.kl > 0.3 and np.allclose(narrow.sd_error, -0.4, atol=0.05)


def test_reproducible_for_a_seed():
    draws = TARGET.sample_exact(500, seed=1)
    assert score(draws, TARGET, seed=2).kl == score(draws, TARGET, seed=2).kl


def test_layouts_of_other_samplers():
    draws = TARGET.sample_exact(400, seed=1).reshape(2, 200, 3)
    numpyro_like = {"a": draws[..., 0], "b": draws[..., 1:]}  # get_samples(group_by_chain=True)
    np.testing.assert_array_equal(as_chains(numpyro_like), draws)

    class Result:
        samples = draws

    np.testing.assert_array_equal(as_chains(Result()), draws)
    assert as_chains(draws[0]).shape == (1, 200, 3)
    assert diagnostics.score is score  # also offered where the diagnostics are


def test_bad_input():
    with pytest.raises(ValueError, match="dimension 3"):
        score(np.zeros((2, 100, 2)), TARGET)
    with pytest.raises(ValueError, match="share"):
        as_chains({"a": np.zeros((2, 10)), "b": np.zeros((2, 11))})
    with pytest.raises(TypeError, match="exact posterior"):
        score(np.zeros((100, 1)), LogDensity(lambda x: 0.0, lambda x: 0 * x, dim=1))
