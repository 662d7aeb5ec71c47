"""pyvi's ESS (bulk, tail, mean), MCSE (mean, sd), R-hat and E-BFMI against ArviZ's own on the same
arrays, to 1e-6 relative: autocorrelated, anti-correlated, tied (HMC rejections repeat draws), short
and multi-dimensional draws."""

import warnings

import numpy as np
import pytest

from pyvi import diagnostics


@pytest.fixture(scope="module")
def az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.23 announces its 1.0 rewrite on import
        arviz = pytest.importorskip("arviz")
    arviz.Numba.disable_numba()  # its numba path of mcse(method="sd") fails on numpy 2 scalars
    return arviz


def _draws(rng, chains, num, dim, rho, ties=False):
    """AR(1) chains x_t = rho x_{t-1} + noise, optionally rounded to create ties."""
    x = np.empty((chains, num, dim))
    x[:, 0] = rng.standard_normal((chains, dim))
    noise = rng.standard_normal((chains, num, dim))
    for t in range(1, num):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return np.round(x, 1) if ties else x


CASES = [(4, 500, 3, 0.9, False), (4, 500, 2, -0.6, False), (1, 200, 2, 0.5, False), (2, 11, 1, 0.3, False),
         (3, 6, 2, 0.0, False), (4, 300, 2, 0.95, True), (2, 1001, 1, 0.99, False)]


@pytest.mark.parametrize("chains, num, dim, rho, ties", CASES)
def test_ess_and_mcse_equal_arviz(az, rng, chains, num, dim, rho, ties):
    draws = _draws(rng, chains, num, dim, rho, ties)
    dataset = az.convert_to_dataset(draws)  # one variable "x" with chain, draw, x_dim_0

    def theirs(function, **kwargs):
        return function(dataset, **kwargs)["x"].values

    pairs = [(diagnostics.ess_bulk(draws), theirs(az.ess, method="bulk")),
             (diagnostics.ess_tail(draws), theirs(az.ess, method="tail")),
             (diagnostics.ess_mean(draws), theirs(az.ess, method="mean")),
             (diagnostics.ess(draws), theirs(az.ess, method="identity")),
             (diagnostics.mcse_mean(draws), theirs(az.mcse, method="mean")),
             (diagnostics.mcse_sd(draws), theirs(az.mcse, method="sd"))]
    if chains > 1:
        pairs.append((diagnostics.split_rhat(draws), theirs(az.rhat, method="rank")))
    for ours, expected in pairs:
        np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_e_bfmi_equals_arviz(az, rng):
    energy = np.cumsum(rng.standard_normal((3, 400)), axis=1) * 0.1 + rng.standard_normal((3, 400))
    np.testing.assert_allclose(diagnostics.e_bfmi(energy), az.bfmi(energy), rtol=1e-6)


def test_mcse_mean_matches_the_spread_of_chain_means(rng):
    """For i.i.d. N(0, 1) draws, mcse of the mean is 1 / sqrt(n)."""
    draws = rng.standard_normal((4, 2500, 2))
    np.testing.assert_allclose(diagnostics.mcse_mean(draws), 0.01, rtol=0.1)
    np.testing.assert_allclose(diagnostics.mcse_sd(draws), 1 / np.sqrt(2 * 10_000), rtol=0.1)


def test_e_bfmi_low_for_a_random_walk_energy(rng):
    walk = np.cumsum(rng.standard_normal((2, 2000)), axis=1)
    assert np.all(diagnostics.e_bfmi(walk) < 0.3)


@pytest.mark.parametrize("function", [diagnostics.ess_tail, diagnostics.mcse_mean, diagnostics.mcse_sd,
                                      diagnostics.ess_mean])
def test_bad_draws(function):
    with pytest.raises(ValueError, match="at least 4"):
        function(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        function(np.full((2, 10), np.inf))


def test_bad_energy_and_prob():
    with pytest.raises(ValueError, match="energy must be a 2-D"):
        diagnostics.e_bfmi(np.zeros(10))
    with pytest.raises(ValueError, match="at least 2"):
        diagnostics.e_bfmi(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="prob"):
        diagnostics.ess_tail(np.random.default_rng(0).standard_normal((2, 10)), prob=0.0)
