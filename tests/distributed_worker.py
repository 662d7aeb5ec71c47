"""What each process of tests/test_distributed.py's torchrun runs: ``python distributed_worker.py
SCENARIO OUT``. Every rank writes what it got to OUT/<scenario>-<rank>.* for the test to compare with
a single-process run; a scenario that expects an error records it (type, message, seconds) instead
of raising, so that torchrun itself succeeds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import pyvi.distributed as distributed
from pyvi.hmc import sample
from pyvi.targets import Banana

#: The HMC run every scenario compares (5 chains: an uneven split over 2 processes).
HMC_RUN = dict(num_samples=40, num_warmup=40, step_size=0.05, num_steps=8, num_chains=5, seed=11)
HMC_START = [1.0, 0.5]


def hmc(out: Path, rank: int) -> None:
    banana = Banana.default()
    for backend in ("cpp", "numba", "numpy"):
        result = sample(banana, HMC_START, backend=backend, num_threads=1, **HMC_RUN)
        np.savez(out / f"hmc-{backend}-{rank}.npz", samples=result.samples, log_prob=result.log_prob,
                 accept_prob=result.accept_prob, divergent=result.divergent, num_steps=result.num_steps,
                 step_size=result.step_size)


class _FailsOnRankOne:
    """A target whose log density raises on rank 1 after a pause (rank 0 is waiting by then)."""

    dim = 2

    def __init__(self, rank: int):
        self.rank, self.banana = rank, Banana.default()

    def log_prob_and_grad(self, x):
        if self.rank == 1:
            time.sleep(2.0)
            raise ValueError("boom on rank 1")
        return self.banana.log_prob_and_grad(x)


def error(out: Path, rank: int) -> None:
    started = time.perf_counter()
    try:
        sample(_FailsOnRankOne(rank), HMC_START, backend="numpy", **{**HMC_RUN, "num_chains": 2})
        caught = {"type": None}
    except Exception as exc:  # noqa: BLE001  (recorded for the test)
        caught = {"type": type(exc).__name__, "message": str(exc), "rank": getattr(exc, "rank", None)}
    caught["seconds"] = time.perf_counter() - started
    (out / f"error-{rank}.json").write_text(json.dumps(caught))


SCENARIOS = {"hmc": hmc, "error": error}

if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    group = distributed.current()
    assert group is not None and group.world_size == 2, group
    SCENARIOS[scenario](out, group.rank)
