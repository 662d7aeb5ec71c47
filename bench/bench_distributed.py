"""Scaling out with torchrun (pyvi.distributed): 1 vs 2 processes, one thread each.

- VAE: one training epoch on the embedded 4,000 digits, batch 128 (target: >= 1.6x from the 2nd
  process), and the same epoch at batch 512 (what the per-step costs leave at 4x the rows); the step by pyvi's DataParallel.step_ (the gradient sum and Adam sharded over the
  processes of one machine, ZeRO stage 1 in shared memory) against the replicated step (the whole
  sum through shared memory, the whole Adam in every process) and torch's DistributedDataParallel.
- HMC: 64 chains x 150,000 iterations x L = 30 on the banana, cpp, the sampler alone
  (``warn=False``, ``progress=False``; about 1 s in one process, so that a launch's fixed costs
  are not the measurement) (target: >= 1.7x); its ceiling in the same rounds: each process samples
  its 32 chains into its own memory at the same time, nothing gathered.

Each launch runs bench/distributed_workload.py, which times the workloads inside the processes
(between barriers): torchrun's own start is not the workload's. The rows' "time" is that inside
time (pytest-benchmark times nothing here: the launch would dominate); run it on an otherwise idle
machine (check ``uptime``): with two processes on two cores any other job takes a core from one of
them. The VAE's forms alternate in rounds within one 2-process launch (one process's epoch is rank
0's alone, the other waiting), and each form's speed-up is the median of the rounds' ratios: the
project's machines are virtual, on shared hosts whose speed drifts by tens of percent within
minutes (2026-12-02: the same 64-chain HMC run took 1.39 s and 1.86 s a few minutes apart), which
separate launches minutes apart would read as scaling. HMC's 64 chains alternate the same way
(rank 0 alone, then both processes); the separate launches' best of 5 is printed beside them. Under PYVI_BENCH_QUICK=1 one 2-process launch runs tiny workloads.

The VAE's bound. Data parallelism with P processes splits the rows of each batch, nothing else:
every process still runs a whole step's fixed work and the whole Adam update (each keeps the whole
model). Let F(B) be one process's forward + backward of B rows of a batch, A the Adam step over
the 807,700 parameters and R the gradient sum. One process's step takes F(128) + A, a step of two
takes at least F(64) + A + R (the slower process's), so for every step of the epoch, and so for
the epoch,

    speed-up <= (F(128) + A) / (F(64) + A + R) <= (F(128) + A) / (F(64) + A).

Measured on idle machines (load < 0.8), two runs of 2026-12-01: step parts F(128) = 5.76 ms,
F(64) = 3.65 ms, A = 0.63 ms give 6.39 / 4.28 = 1.49x even with a free sum; and the medians of
``vae_step_costs`` of 2026-12-01 (F(128) = 6.16, F(64) = 3.61, A = 0.41 ms) give 1.63x with a free
sum and 1.31x with the shared-memory sum's 1.01 ms. So the 1.6x target is at the edge of what
replicated data parallelism can reach at batch 128 on this model, and out of reach with any sum
that costs more than ~0.1 ms per step. F(64) is well above half of F(128): part of forward +
backward does not scale with the rows (per-op dispatch and autograd, passes over the 0.8 M weights
and their gradients), and each process pays it, as it pays the whole of A.

Sharding the step (``DataParallel.step_``, pyvi._shared_step) removes the second: each process sums
and updates half the parameters, so a step of two takes at least F(64) + A/2 plus its copy of the
others' half of its gradients, half the sum and two barriers (a futex in shared memory,
pyvi._process_barrier), and

    speed-up <= (F(128) + A) / (F(64) + A/2)

which the same measurements put at 6.39 / 3.97 = 1.61x and 6.57 / 3.82 = 1.72x: 1.6x is at the edge
even with a free sum and free barriers. F(64) there is measured with the other core idle; while
both processes run, each one's half batch costs more (they share the machine's memory bandwidth
and last-level cache). The ``bound`` form measures that directly: the epoch's forward + backward
passes alone on both processes at once, no sum, no step, against one process's whole epoch: the
ceiling of any data-parallel step on this machine, measured in the same rounds as the forms it
bounds. Two tighter ceilings run in the same rounds: ``bound_synced``, the same passes with one
barrier per step (a synchronous step waits for the slower process at every step), and
``bound_adam``, that and torch's fused Adam on the process's half of the parameters between two
barriers, in its own memory: the least a synchronous step sharded over the processes does,
with nothing exchanged (no gradient, no updated parameter crosses between the processes). On
2026-12-02's host (AMD EPYC, 2 cores) ``bound_adam`` reached 1.43x and 1.64x in two runs,
``bound_synced`` 1.77x and 1.93x: half an Adam update costs a process 0.4-0.5 ms per step
while both cores work (0.2 ms with the other idle), and whatever a step exchanges comes on top.
So >= 1.6x at batch 128 on this machine is at the edge of a step that exchanges nothing, and
out of reach of one that must. ``table()`` prints the ceilings, the terms of both bounds above
(``vae_step_costs``) and the measured sums.

Run alone for the table: ``python bench/bench_distributed.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
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
        if "vae_rounds_large" in result:
            benchmark.extra_info["large_batch"] = {"batch_size": result["large_batch_size"],
                                                   "rounds_seconds": result["vae_rounds_large"],
                                                   "paired_speedup": paired_speedups(result["vae_rounds_large"])}
    rounds = result.get({"vae_epoch": "vae_rounds", "hmc_64": "hmc_rounds"}[workload])
    if rounds is not None:
        benchmark.extra_info["rounds_seconds"] = rounds
        benchmark.extra_info["paired_speedup"] = paired_speedups(rounds)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert result[workload] > 0


def paired_speedups(rounds: dict[str, list[float]]) -> dict[str, float]:
    """Each 2-process form's speed-up over one process: the median over rounds of the round's
    single-process time over the form's (bench/distributed_workload.py's ``vae_rounds`` and
    ``hmc_rounds``)."""
    single = np.array(rounds["single"])
    return {form: float(np.median(single / np.array(seconds))) for form, seconds in rounds.items() if form != "single"}


VAE_FORMS = {"sharded": "VAE epoch, 4,000 digits, batch 128: pyvi (sharded step)",
             "replicated": "same, replicated step (shared-memory sum, whole Adam in each process)",
             "ddp": "same, torch DistributedDataParallel",
             "bound": "ceiling: the same epoch's forward + backward alone (no sum, no Adam step)",
             "bound_synced": "ceiling of a synchronous step: forward + backward and one barrier per step",
             "bound_adam": "ceiling of a sharded step: that, and Adam on the process's half of the parameters "
                           "(no exchange)"}


def table() -> str:
    one, two = launch(1), launch(2)
    lines = [f"load average before: {one['load_average']} / {two['load_average']}", "",
             "| workload | 1 process | 2 processes | speed-up |", "|---|---|---|---|"]
    rounds, speedups = two["vae_rounds"], paired_speedups(two["vae_rounds"])
    for form, label in VAE_FORMS.items():
        lines.append(f"| {label} | {np.median(rounds['single']):.3f} s | {np.median(rounds[form]):.3f} s | "
                     f"{speedups[form]:.2f}x |")
    large = two["vae_rounds_large"]
    lines.append(f"| same epoch at batch {two['large_batch_size']}: pyvi (sharded step) | "
                 f"{np.median(large['single']):.3f} s | {np.median(large['sharded']):.3f} s | "
                 f"{paired_speedups(large)['sharded']:.2f}x |")
    key, label = "hmc_64", WORKLOADS["hmc_64"]
    rounds = two["hmc_rounds"]
    lines.append(f"| {label} | {np.median(rounds['single']):.3f} s | {np.median(rounds['spread']):.3f} s | "
                 f"{paired_speedups(rounds)['spread']:.2f}x |")
    lines.append(f"| ceiling: each process samples its 32 chains, nothing gathered | {np.median(rounds['single']):.3f} s | "
                 f"{np.median(rounds['bound']):.3f} s | {paired_speedups(rounds)['bound']:.2f}x |")
    lines.append(f"| same, separate launches (best of 5 each) | {one[key]:.3f} s | {min(rounds['spread']):.3f} s "
                 f"(best round) | {one[key] / two[key]:.2f}x |")
    lines.append("")
    lines.append("VAE and HMC: medians of 7 alternating rounds in one 2-process launch (one process = rank 0 "
                 "alone); speed-up = median of the rounds' ratios.")
    lines.append("")
    for n, run in ((1, one), (2, two)):
        parts = ", ".join(f"{k} {v:.2f} ms" for k, v in run["vae_step_parts_ms"].items())
        lines.append(f"VAE step parts, {n} process(es), rank 0: {parts}")
    costs = {**one["vae_step_costs_ms"], **two["vae_step_costs_ms"]}
    lines.append("VAE step costs (medians): " + ", ".join(f"{k} {v:.2f} ms" for k, v in costs.items()))
    single = costs["forward_backward_128"] + costs["adam"]
    half = costs["forward_backward_64"] + costs["adam"]
    lines.append(f"VAE bound, replicated (F(128) + A) / (F(64) + A + R): {single / half:.2f}x with a free sum, "
                 f"{single / (half + costs['sum_shared_memory']):.2f}x with the shared-memory sum, "
                 f"{single / (half + costs['sum_gloo']):.2f}x with gloo's")
    sharded = costs["forward_backward_64"] + costs["adam"] / 2
    lines.append(f"VAE bound, sharded (F(128) + A) / (F(64) + A/2): {single / sharded:.2f}x with a free sum and "
                 f"free barriers")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
