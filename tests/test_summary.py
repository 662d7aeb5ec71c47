"""result.summary() and pyvi.summary against arviz.summary; result.to_arviz() round trip."""

import builtins
import warnings

import numpy as np
import pytest

from pyvi import hmc
from pyvi.summary import column_names, format_table, hdi, summarize
from pyvi.targets import Gaussian


@pytest.fixture(scope="module")
def az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.23 announces its 1.0 rewrite on import
        arviz = pytest.importorskip("arviz")
    arviz.Numba.disable_numba()
    return arviz


@pytest.fixture(scope="module")
def result():
    target = Gaussian([0.0, 1.0], [[1.0, 0.8], [0.8, 2.0]])
    return hmc.sample(target, [0.0, 0.0], num_samples=300, num_warmup=200, step_size=0.3, num_steps=5,
                      num_chains=3, seed=1, warn=False)


def test_summary_equals_arviz(az, result):
    theirs = az.summary(result.to_arviz(), round_to="none")
    ours = result.summary()
    for name in column_names():
        np.testing.assert_allclose(ours[name], theirs[name].to_numpy(), rtol=1e-6, err_msg=name)
    assert ours["rhat"] == ours["r_hat"] and ours["num_chains"] == 3


@pytest.mark.parametrize("hdi_prob", [0.5, 0.9])
def test_summarize_other_intervals_equal_arviz(az, rng, hdi_prob):
    draws = np.cumsum(rng.standard_normal((2, 101, 3)), axis=1)  # odd draws, random walks
    theirs = az.summary(az.convert_to_inference_data(draws), hdi_prob=hdi_prob, round_to="none")
    ours = summarize(draws, hdi_prob)
    names = column_names(hdi_prob)
    assert list(theirs.columns) == names
    for name in names:
        if name == "r_hat":  # ArviZ's summary folds around the unsplit median (its rhat, the split one)
            continue
        np.testing.assert_allclose(ours[name], theirs[name].to_numpy(), rtol=1e-6, err_msg=name)


def test_to_arviz_groups_and_names(az, result):
    data = result.to_arviz()
    assert data.posterior["x"].shape == (3, 300, 2)
    stats = data.sample_stats
    assert set(stats.data_vars) == {"lp", "acceptance_rate", "diverging", "n_steps", "step_size"}
    np.testing.assert_array_equal(stats["lp"].values, result.log_prob)
    np.testing.assert_array_equal(stats["step_size"].values[:, 7], result.step_size)
    np.testing.assert_allclose(az.ess(data, method="tail")["x"].values, result.summary()["ess_tail"], rtol=1e-6)
    np.testing.assert_allclose(az.rhat(data)["x"].values, result.rhat, rtol=1e-6)


def test_to_arviz_maps_nuts_fields_and_warmup(az, result):
    """Fields a NUTS result adds (energy, tree depth) and saved warm-up draws reach their groups."""
    import dataclasses

    energy = np.random.default_rng(0).standard_normal((3, 300))
    updates = dict(energy=energy, tree_depth=np.ones((3, 300), np.int32), warmup_samples=np.zeros((3, 50, 2)),
                   warmup_log_prob=np.zeros((3, 50)))
    if set(updates) <= {f.name for f in dataclasses.fields(result)}:  # HMCResult has NUTS's fields itself
        nuts = dataclasses.replace(result, **updates)
    else:
        @dataclasses.dataclass(frozen=True)
        class NutsLike(type(result)):
            energy: np.ndarray = None
            tree_depth: np.ndarray = None
            warmup_samples: np.ndarray = None
            warmup_log_prob: np.ndarray = None

        nuts = NutsLike(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)}, **updates)
    data = nuts.to_arviz()
    assert {"energy", "tree_depth"} <= set(data.sample_stats.data_vars)
    assert data.warmup_posterior["x"].shape == (3, 50, 2) and set(data.warmup_sample_stats.data_vars) == {"lp"}
    np.testing.assert_allclose(az.bfmi(data), nuts.summary()["e_bfmi"], rtol=1e-6)


def test_to_arviz_round_trip_of_a_nuts_run(az):
    """A real NUTS run (warm-up saved): ArviZ's summary, ess, rhat, mcse and bfmi of
    result.to_arviz() equal pyvi's diagnostics on the same draws, and every statistic reaches
    sample_stats under ArviZ's name unchanged."""
    from pyvi import diagnostics

    target = Gaussian([0.0, 1.0, -1.0], [[1.0, 0.8, 0.0], [0.8, 2.0, 0.3], [0.0, 0.3, 0.5]])
    result = hmc.nuts(target, [0.0, 0.0, 0.0], num_samples=250, num_warmup=200, num_chains=3, seed=2,
                      save_warmup=True, warn=False)
    data = result.to_arviz()
    theirs = az.summary(data, round_to="none")
    ours = result.summary()
    for name in column_names():
        np.testing.assert_allclose(ours[name], theirs[name].to_numpy(), rtol=1e-6, err_msg=name)
    draws = result.samples
    for method, ours_value in (("bulk", diagnostics.ess_bulk(draws)), ("tail", diagnostics.ess_tail(draws))):
        np.testing.assert_allclose(az.ess(data, method=method)["x"].values, ours_value, rtol=1e-6, err_msg=method)
    np.testing.assert_allclose(az.rhat(data)["x"].values, diagnostics.split_rhat(draws), rtol=1e-6)
    np.testing.assert_allclose(az.mcse(data, method="mean")["x"].values, diagnostics.mcse_mean(draws), rtol=1e-6)
    np.testing.assert_allclose(az.mcse(data, method="sd")["x"].values, diagnostics.mcse_sd(draws), rtol=1e-6)
    np.testing.assert_allclose(az.bfmi(data), diagnostics.e_bfmi(result.energy), rtol=1e-6)
    stats = data.sample_stats
    for theirs_name, ours_name in (("lp", "log_prob"), ("acceptance_rate", "accept_prob"), ("diverging", "divergent"),
                                   ("n_steps", "num_steps"), ("tree_depth", "tree_depth"), ("energy", "energy")):
        np.testing.assert_array_equal(stats[theirs_name].values, getattr(result, ours_name), err_msg=theirs_name)
    np.testing.assert_array_equal(stats["step_size"].values, np.repeat(result.step_size[:, None], 250, axis=1))
    np.testing.assert_array_equal(data.posterior["x"].values, draws)
    np.testing.assert_array_equal(data.warmup_posterior["x"].values, result.warmup_samples)
    np.testing.assert_array_equal(data.warmup_sample_stats["lp"].values, result.warmup_log_prob)


def test_to_arviz_without_arviz_names_the_extra(result, monkeypatch):
    real_import = builtins.__import__

    def no_arviz(name, *args, **kwargs):
        if name == "arviz":
            raise ImportError("No module named 'arviz'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_arviz)
    with pytest.raises(ImportError, match=r"pip install 'pyvi\[arviz\]'"):
        result.to_arviz()


def test_table_and_hdi(rng):
    columns = summarize(rng.standard_normal((2, 50, 2)))
    table = format_table(columns)
    assert table.splitlines()[0].split() == column_names() and table.splitlines()[2].startswith("x[1]")
    with pytest.raises(ValueError, match="prob"):
        hdi(np.zeros((2, 10)), 1.5)
    short = summarize(rng.standard_normal((2, 3)))
    assert np.isnan(short["ess_bulk"][0]) and np.isfinite(short["mean"][0])
