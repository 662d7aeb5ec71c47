"""pyvi.distributed: the shares and messages in process, and real 2-process runs under torchrun
(gloo on the CPU; tests/distributed_worker.py is what each process runs) compared with one process.

A torchrun of two processes costs ~10-20 s on a busy 2-core machine (three Python interpreters
importing torch), so each scenario is one launch, shared by the tests that read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyvi.distributed as distributed
from pyvi.distributed import Group

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WORKER.parent))
import distributed_worker  # noqa: E402  (the scenarios' settings)


def torchrun(scenario: str, out: Path, *, timeout: float = 240, env: dict | None = None) -> None:
    """Runs the scenario on 2 processes (torchrun --standalone: a free port per launch)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    environment.update({"PYTHONPATH": os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")]),
                        "OMP_NUM_THREADS": "1", "PYVI_DISTRIBUTED_TIMEOUT": "120", **(env or {})})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(WORKER),
               scenario, str(out)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


@pytest.fixture(scope="module")
def hmc_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hmc")
    torchrun("hmc", out)
    return out


# -- in process -------------------------------------------------------------------------------------


def test_outside_torchrun_nothing_is_initialised():
    """A plain run (no launcher variables) samples on the single-process path and never starts a
    process group (checked in a fresh interpreter: pytest may have started none either way)."""
    code = ("import torch.distributed as dist, pyvi.distributed as d\n"
            "from pyvi.hmc import sample\nfrom pyvi.targets import Banana\n"
            "r = sample(Banana.default(), [1.0, 0.5], num_samples=5, num_warmup=5, step_size=0.05, num_steps=3,"
            " num_chains=3)\n"
            "assert r.samples.shape == (3, 5, 2) and d.current() is None and not d.launched()\n"
            "assert not dist.is_initialized()\nprint('ok')\n")
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_one_process_under_a_launcher_is_the_single_process_path(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.launched() and distributed.current() is None


def test_shares_are_contiguous_balanced_blocks_in_rank_order():
    for total, world in ((5, 2), (64, 2), (7, 3), (3, 3)):
        blocks = [Group(rank, world, "gloo").share(total, "num_chains") for rank in range(world)]
        assert [i for block in blocks for i in block] == list(range(total))
        assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_more_processes_than_chains_or_an_uneven_batch_is_refused_clearly():
    with pytest.raises(ValueError, match=r"num_chains=1 is less than the number of processes \(2\)"):
        Group(0, 2, "gloo").share(1, "num_chains")
    with pytest.raises(ValueError, match=r"batch_size=129 must be a multiple of the number of processes \(2\)"):
        Group(1, 2, "gloo").even_share(129, "batch_size")
    assert Group(1, 2, "gloo").even_share(128, "batch_size") == range(64, 128)


def test_rank_seeds_differ_between_ranks():
    seeds = {Group(rank, 4, "gloo").rank_seed(7) for rank in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**64 for s in seeds)


def test_bad_timeout_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PYVI_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PYVI_DISTRIBUTED_TIMEOUT"):
        distributed._timeout()


# -- two processes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_hmc_two_processes_give_exactly_the_single_process_draws(hmc_run, backend):
    from pyvi.hmc import sample
    from pyvi.targets import Banana

    single = sample(Banana.default(), distributed_worker.HMC_START, backend=backend, num_threads=1,
                    **distributed_worker.HMC_RUN)
    gathered = np.load(hmc_run / f"hmc-{backend}-0.npz")
    own = np.load(hmc_run / f"hmc-{backend}-1.npz")  # rank 1: its block, chains 3 and 4
    for name in gathered.files:
        expected = getattr(single, name)
        assert gathered[name].dtype == expected.dtype and np.array_equal(gathered[name], expected), name
        assert np.array_equal(own[name], expected[3:]), name


def test_a_failing_rank_stops_the_others_with_its_error_within_seconds(tmp_path):
    torchrun("error", tmp_path)
    failed, waiting = (json.loads((tmp_path / f"error-{rank}.json").read_text()) for rank in (1, 0))
    assert failed["type"] == "ValueError" and "boom on rank 1" in failed["message"]
    assert waiting["type"] == "RankFailedError" and waiting["rank"] == 1
    assert "rank 1 failed with ValueError: boom on rank 1" in waiting["message"]
    assert "log_prob_and_grad" in waiting["message"]  # the failed rank's traceback comes along
    # Rank 1 fails 2 s in; rank 0 learns of it at once, not after the 120 s collective timeout.
    assert waiting["seconds"] < 20, waiting
