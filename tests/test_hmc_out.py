"""Sampling into given arrays (``out``): pyvi._core.hmc_draws / hmc_start take them as they are, or
refuse them clearly; a distributed run's rank 0 samples its chains straight into its rows of the
gathered result (pyvi.distributed.run_chains with ``allocate``)."""

from __future__ import annotations

import numpy as np
import pytest

from pyvi import _core, distributed
from pyvi.hmc import sample
from pyvi.targets import Banana

RUN = dict(num_samples=30, num_warmup=20, step_size=0.05, num_steps=5, num_chains=5, seed=3, warn=False)


def _views(num_chains: int, rows: int, num_samples: int = 4, dim: int = 2) -> tuple[dict, dict]:
    """Outputs for ``num_chains`` chains, and views of their first ``rows`` rows."""
    whole = _core.hmc_draws(num_chains, num_samples, dim)
    return whole, {name: array[:rows] for name, array in whole.items()}


def test_hmc_draws_takes_given_arrays_as_they_are():
    whole, first = _views(5, 3)
    taken = _core.hmc_draws(3, 4, 2, first)
    assert sorted(taken) == sorted(_core.hmc_outputs)
    for name, array in taken.items():
        assert array.__array_interface__["data"][0] == whole[name].__array_interface__["data"][0], name


@pytest.mark.parametrize("change, error, message", [
    (lambda out: {**out, "samples": out["samples"].astype(np.float32)}, TypeError, "out['samples'] must be a C-ordered numpy array of float64, got an array of float32"),
    (lambda out: {**out, "samples": np.zeros((3, 2, 4))[:, :, ::-1].transpose(0, 2, 1)}, TypeError, "got an array that is not C-ordered"),
    (lambda out: {**out, "divergent": [[False] * 4] * 3}, TypeError, "out['divergent'] must be a C-ordered numpy array of bool, got list"),
    (lambda out: {**out, "log_prob": np.zeros((2, 4))}, ValueError, r"out['log_prob'] must have shape (3, 4), got (2, 4)"),
    (lambda out: {k: v for k, v in out.items() if k != "num_steps"}, ValueError, "out must have an array 'num_steps'"),
    (lambda out: {**out, "accept_prob": out["log_prob"]}, ValueError, "out['accept_prob'] and out['log_prob'] overlap"),
])
def test_hmc_draws_refuses_arrays_it_would_have_to_convert_or_could_not_fill(change, error, message):
    _, first = _views(5, 3)
    with pytest.raises(error) as caught:
        _core.hmc_draws(3, 4, 2, change(first))
    assert message in str(caught.value)


def test_hmc_draws_refuses_read_only_arrays():
    _, first = _views(5, 3)
    first["step_size"] = first["step_size"].copy()
    first["step_size"].flags.writeable = False
    with pytest.raises(ValueError, match=r"out\['step_size'\] must be writeable"):
        _core.hmc_draws(3, 4, 2, first)


def test_nuts_draws_takes_given_arrays_as_they_are_or_refuses_them():
    whole = _core.nuts_draws(5, 6, 2, True)
    first = {name: array[:3] for name, array in whole.items()}
    taken = _core.nuts_draws(3, 6, 2, True, first)
    assert sorted(taken) == sorted(_core.nuts_outputs)
    for name, array in taken.items():
        assert np.shares_memory(array, whole[name]), name
    with pytest.raises(ValueError, match=r"out\['inv_metric'\] must have shape \(3, 2\), got \(3, 2, 2\)"):
        _core.nuts_draws(3, 6, 2, False, first)  # a diagonal metric's shape
    with pytest.raises(TypeError, match=r"out\['tree_depth'\] must be a C-ordered numpy array of int32, got an array of int64"):
        _core.nuts_draws(3, 6, 2, True, {**first, "tree_depth": first["tree_depth"].astype(np.int64)})


NUTS_RUN = dict(num_samples=20, num_warmup=30, num_chains=5, seed=3, warn=False, kernel="nuts")


@pytest.mark.parametrize("kernel", ["hmc", "nuts"])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_run_chains_samples_rank_0s_block_into_the_gathered_result(monkeypatch, backend, kernel):
    """Rank 0 of 2 (a stand-in group whose gather delivers the other block from a single run):
    run_chains allocates the whole result, rank 0's chains 0..2 are sampled into its first rows
    in place (the gather gets the result as ``out`` with those rows already there), and the
    result is the single-process run's outputs bit for bit."""
    import pyvi.hmc.sampler

    run = RUN if kernel == "hmc" else NUTS_RUN
    real_run_chains, outputs = pyvi.hmc.sampler.run_chains, []

    def run_chains(*args, **kwargs):  # (the sampler's outputs, before they become a result)
        outputs.append(real_run_chains(*args, **kwargs))
        return outputs[-1]

    def gather_rows(self, arrays, total, out=None):
        seen["in_place"] = all(np.shares_memory(arrays[name], out[name][:3]) for name in arrays)
        for name in out:  # the other process's block: chains 3 and 4 of the single run
            out[name][3:] = single[name][3:]
        return out

    monkeypatch.setattr(pyvi.hmc.sampler, "run_chains", run_chains)
    sample(Banana.default(), [1.0, 0.5], backend=backend, num_threads=1, **run)
    single, seen = outputs.pop(), {}
    monkeypatch.setattr(distributed, "_failure", None)  # (restored after: a failure here must not outlive the test)
    monkeypatch.setattr(distributed, "current", lambda: distributed.Group(rank=0, world_size=2, backend="gloo"))
    monkeypatch.setattr(pyvi.hmc.sampler, "agree", lambda value: value)  # (rank 0's settings: these)
    monkeypatch.setattr(distributed.Group, "gather_rows", gather_rows)
    sample(Banana.default(), [1.0, 0.5], backend=backend, num_threads=1, **run)
    gathered = outputs.pop()
    assert seen["in_place"]
    assert sorted(gathered) == sorted(single)
    for name, array in single.items():
        assert gathered[name].dtype == array.dtype and np.array_equal(gathered[name], array), name
