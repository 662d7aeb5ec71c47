"""The progress bar of an MCMC run (pyvi/hmc/progress.py): a late "auto" bar starts at the count
reached, a bar is closed however the run ends, and the report's timed runs draw none."""

import numpy as np
import pytest
import tqdm.auto

import pyvi.hmc.progress
from pyvi import hmc
from pyvi.hmc.progress import as_progress, progress_callback
from pyvi.targets import Banana, LogDensity


@pytest.fixture
def bars(monkeypatch) -> list:
    """Every tqdm bar the progress callbacks draw, kept."""
    drawn = []

    class Recorded(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    return drawn


def test_a_late_auto_bar_starts_at_the_count_reached(monkeypatch, bars, capsys):
    monkeypatch.setattr(pyvi.hmc.progress, "AUTO_AFTER", 1e-9)  # any run is long
    callback = as_progress("auto", 2, "hmc (numpy)")
    callback(300, 1000)
    assert len(bars) == 1 and bars[0].n == 600 and bars[0].total == 2000
    assert " 0/2000" not in capsys.readouterr().err  # no 0% line before the real count
    callback(1000, 1000)
    assert bars[0].disable  # closed at the end of the run


def test_auto_draws_nothing_for_a_short_run(bars):
    callback = as_progress("auto", 1, "hmc (cpp)")
    callback(10, 10)
    assert bars == []


def test_a_bar_is_closed_when_the_block_raises(bars):
    with pytest.raises(KeyboardInterrupt), progress_callback(True, 1, "hmc (cpp)") as callback:
        callback(5, 10)
        raise KeyboardInterrupt
    assert len(bars) == 1 and bars[0].disable


def test_a_bar_is_closed_when_the_target_raises_mid_run(bars):
    banana = Banana.default()
    calls = []

    def log_density(x):
        calls.append(1)
        if len(calls) > 2000:
            raise RuntimeError("the user's model failed")
        return banana.log_prob_and_grad(x)[0]

    target = LogDensity(log_density, lambda x: banana.log_prob_and_grad(x)[1], dim=2)
    with pytest.raises(RuntimeError, match="the user's model failed"):
        hmc.sample(target, [1.0, 0.5], num_samples=500, num_warmup=500, step_size=0.05, num_steps=10, seed=0,
                   backend="numpy", progress=True)
    assert len(bars) == 1 and bars[0].disable


def test_the_reports_timed_runs_draw_no_bar(monkeypatch):
    """pyvi.app's timed HMC runs (the benchmark table, Problem 3.3's runs) pass progress=False: a
    bar would stay in the report's log as text ("hmc (numpy): 0%| 0/2000")."""
    from pyvi.app.pipeline import bench
    from pyvi.app.pipeline import hmc as hmc_pipeline

    seen = []

    def sample(*args, **kwargs):
        seen.append(kwargs.get("progress", "auto"))
        return hmc_result

    hmc_result = hmc.sample(Banana.default(), [1.0, 0.5], num_samples=5, num_warmup=5, step_size=0.05, num_steps=3,
                            seed=0, warn=False)
    monkeypatch.setattr(hmc, "sample", sample)
    bench._hmc_rows(Banana.default())
    hmc_pipeline.hmc_runs(Banana.default(), long_chains=2, long_samples=10)
    assert len(seen) >= 6 and all(progress is False for progress in seen)
    np.testing.assert_array_equal(hmc_result.samples.shape, (1, 5, 2))
