"""Scaling out with torchrun (pyvi.distributed): 1 vs 2 processes, one thread each.

- VAE: one training epoch on the embedded 4,000 digits, batch 128 (target: >= 1.6x from the 2nd
  process); the gradient sum by pyvi's one flat all-reduce against torch's DistributedDataParallel.
- HMC: 64 chains x 150,000 iterations x L = 30 on the banana, cpp, the sampler alone
  (``warn=False``, ``progress=False``; about 1 s in one process, so that a launch's fixed costs
  are not the measurement) (target: >= 1.7x).

Each launch runs bench/distributed_workload.py, which times the workloads inside the processes
(between barriers, best of a few repeats): torchrun's own start is not the workload's. The rows'
"time" is that inside time (pytest-benchmark times nothing here: the launch would dominate); run
it on an otherwise idle machine (check ``uptime``): with two processes on two cores any other job
takes a core from one of them. Under PYVI_BENCH_QUICK=1 one 2-process launch runs tiny workloads.

Run alone for the table: ``python bench/bench_distributed.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import QUICK

WORKLOAD = Path(__file__).with_name("distributed_workload.py")
ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"vae_epoch": "VAE epoch, 4,000 digits, batch 128", "hmc_64": "HMC, 64 chains x 150,000 x L = 30, cpp"}


def launch(num_processes: int) -> dict:
    """Runs the workload on ``num_processes`` (torchrun --standalone, one thread each); rank 0's
    results, plus ``ranks``: every rank's."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    environment.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                                               environment.get("PYTHONPATH", "")])})
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                   str(num_processes), str(WORKLOAD), out, *(["--quick"] if QUICK else [])]
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=1200, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        ranks = [json.loads(Path(out, f"rank-{r}.json").read_text()) for r in range(num_processes)]
    return {**ranks[0], "ranks": ranks}


@pytest.fixture(scope="module")
def runs() -> dict[int, dict]:
    return {n: launch(n) for n in ((2,) if QUICK else (1, 2))}


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("num_processes", [1, 2])
def test_scaling(benchmark, runs, workload, num_processes):
    if num_processes not in runs:
        pytest.skip("quick mode launches 2 processes only")
    result = runs[num_processes]
    benchmark.group = f"distributed: {WORKLOADS[workload]}"
    benchmark.extra_info.update(impl=f"{num_processes} process(es)", baseline=num_processes == 1,
                                seconds=result[workload], load_average=result["load_average"])
    if workload == "vae_epoch":
        benchmark.extra_info["step_parts_ms"] = result["vae_step_parts_ms"]
        if "vae_epoch_ddp" in result:
            benchmark.extra_info["ddp_seconds"] = result["vae_epoch_ddp"]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert result[workload] > 0


def table() -> str:
    one, two = launch(1), launch(2)
    lines = [f"load average before: {one['load_average']} / {two['load_average']}", "",
             "| workload | 1 process | 2 processes | speed-up |", "|---|---|---|---|"]
    for key, label in WORKLOADS.items():
        lines.append(f"| {label} | {one[key]:.3f} s | {two[key]:.3f} s | {one[key] / two[key]:.2f}x |")
    lines.append(f"| same VAE epoch, torch DDP | | {two['vae_epoch_ddp']:.3f} s | {one['vae_epoch'] / two['vae_epoch_ddp']:.2f}x |")
    lines.append("")
    for n, run in ((1, one), (2, two)):
        parts = ", ".join(f"{k} {v:.2f} ms" for k, v in run["vae_step_parts_ms"].items())
        lines.append(f"VAE step parts, {n} process(es), rank 0: {parts}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
