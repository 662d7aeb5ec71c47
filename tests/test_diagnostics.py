"""R-hat and ESS against processes whose answers are known in closed form."""

import numpy as np
import pytest

from pyvi.diagnostics import ess_bulk, rank_normalize, split_rhat


def _ar1(rng, rho, chains, n):
    x = np.empty((chains, n))
    x[:, 0] = rng.standard_normal(chains)
    noise = rng.standard_normal((chains, n)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def test_iid_draws(rng):
    draws = rng.standard_normal((4, 2000, 3))
    assert np.all(split_rhat(draws) < 1.01)
    ess = ess_bulk(draws)
    assert np.all(np.abs(ess / 8000 - 1) < 0.15)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ar1_ess_matches_integrated_autocorrelation_time(rng, rho):
    draws = _ar1(rng, rho, 4, 20000)
    expected = draws.size * (1 - rho) / (1 + rho)  # N / tau, tau = (1 + rho) / (1 - rho)
    assert abs(ess_bulk(draws)[0] / expected - 1) < 0.15


def test_rhat_flags_a_shifted_chain(rng):
    draws = rng.standard_normal((4, 1000))
    draws[3] += 2.0
    assert split_rhat(draws)[0] > 1.1


def test_rhat_flags_a_chain_with_another_scale(rng):
    draws = rng.standard_normal((4, 2000))
    draws[3] *= 3.0  # same location: only the folded (tail) R-hat sees it
    assert split_rhat(draws)[0] > 1.05


def test_rhat_flags_a_trend_within_chains(rng):
    draws = rng.standard_normal((4, 1000)) + np.linspace(0, 3, 1000)  # split halves disagree
    assert split_rhat(draws)[0] > 1.1


def test_rank_normalize_handles_ties():
    draws = np.array([[1.0, 1.0, 2.0, 3.0], [1.0, 4.0, 4.0, 5.0]])[..., None]
    z = rank_normalize(draws)
    assert z[0, 0, 0] == z[0, 1, 0] == z[1, 0, 0]  # the three 1.0s share one score
    assert np.all(np.diff(np.sort(z.ravel())) >= 0)


def test_constant_draws_give_nan_not_error():
    draws = np.ones((2, 100))
    assert np.isnan(ess_bulk(draws)[0])


@pytest.mark.parametrize("draws, match", [(np.zeros(10), "draws must be a 2-D or 3-D"), (np.zeros((2, 3)), "at least 4"),
                                          (np.full((2, 10), np.nan), "finite"),
                                          # issue #15 item 14: 0 chains gave [nan]; 5 draws were
                                          # reported as 2 (the halves of the split chains)
                                          (np.zeros((0, 10)), "at least one chain, got 0"),
                                          (np.zeros((0, 10, 2)), "at least one chain, got 0"),
                                          (np.zeros((2, 3, 2)), "at least 4 draws per chain, got 3")])
def test_bad_input(draws, match):
    with pytest.raises(ValueError, match=match):
        split_rhat(draws)
    with pytest.raises(ValueError, match=match):
        ess_bulk(draws)


def test_ndtri_equals_torch_to_1e12():
    """The local normal quantile (Cephes' ndtri, as torch and scipy use) against torch's, over the
    ranks' probabilities and the tails."""
    import torch

    from pyvi.convergence import _ndtri

    p = np.concatenate([(np.arange(1, 40_001) - 0.375) / (40_000 + 0.25), np.logspace(-300, -1, 2000),
                        1.0 - np.logspace(-16, -1, 500), [0.5, np.exp(-2.0), 1.0 - np.exp(-2.0), np.exp(-32.0)]])
    expected = torch.special.ndtri(torch.from_numpy(p)).numpy()
    np.testing.assert_allclose(_ndtri(p), expected, rtol=1e-12, atol=1e-12)
    assert _ndtri(np.array([0.0]))[0] == -np.inf and _ndtri(np.array([1.0]))[0] == np.inf


def test_split_rhat_does_not_import_torch():
    """``.rhat`` on an HMC result must not pay torch's import (seconds) for one normal quantile."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, pyvi.diagnostics as d; "
            "d.split_rhat(np.random.default_rng(0).standard_normal((4, 100))); d.ess_bulk(np.ones((2, 8)) + "
            "np.arange(8)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_ess_bulk_takes_any_chain_of_at_least_4_draws():
    """Issue #15 item 14: 4 to 7 draws per chain were refused as "got 2" or "got 3" (the split
    halves were validated again)."""
    draws = np.random.default_rng(0).normal(size=(2, 5, 2))
    for num in (4, 5, 7):
        assert ess_bulk(draws[:, :num] if num <= 5 else np.concatenate([draws, draws[:, :2]], axis=1)).shape == (2,)
