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
#: The NUTS run: long enough a warm-up for Stan's windows (per chain: their metric and step size
#: must come out the same whichever process runs the chain), its rows kept.
NUTS_RUN = dict(num_samples=30, num_warmup=150, num_chains=5, seed=11, save_warmup=True, thin=2, init_jitter=0.2)
NUTS_BACKENDS = ("cpp", "numba")


def hmc(out: Path, rank: int) -> None:
    banana = Banana.default()
    for backend in ("cpp", "numba", "numpy", "torch"):
        result = sample(banana, HMC_START, backend=backend, num_threads=1, **HMC_RUN)
        np.savez(out / f"hmc-{backend}-{rank}.npz", samples=result.samples, log_prob=result.log_prob,
                 accept_prob=result.accept_prob, divergent=result.divergent, num_steps=result.num_steps,
                 step_size=result.step_size)
    for backend in NUTS_BACKENDS:
        result = sample(banana, HMC_START, backend=backend, num_threads=1, kernel="nuts", warn=False, **NUTS_RUN)
        np.savez(out / f"nuts-{backend}-{rank}.npz", **nuts_fields(result))
    # seed=None: every process runs with rank 0's draw from the operating system's entropy.
    result = sample(banana, HMC_START, backend="cpp", num_threads=1, **{**HMC_RUN, "seed": None})
    np.savez(out / f"hmc-entropy-{rank}.npz", samples=result.samples, seed=np.uint64(result.settings["seed"]))


def nuts_fields(result) -> dict[str, np.ndarray]:
    """A NUTS result's arrays: every per-draw statistic (warm-up rows too) and the adapted step sizes
    and metrics."""
    names = ("samples", "log_prob", "accept_prob", "divergent", "num_steps", "tree_depth", "energy",
             "energy_error", "step_size", "inv_metric")
    fields = {name: getattr(result, name) for name in names}
    fields.update({f"warmup_{name}": getattr(result, f"warmup_{name}") for name in names[:8]})
    return fields


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


#: The VAE runs (257 training images in batches of 64: the last batch of one image leaves rank 1's
#: share empty).
VAE_RUN = dict(batch_size=64, lr=1e-3, seed=5, eval_images=40, progress=False)
VAE_IMAGES = (257, 60)
BITS_SEED = 123


def vae_setup(device: str = "cpu"):
    """The small data sets and the model every run starts from (same initial weights everywhere),
    on ``device`` (under torchrun "cuda" is each process's own GPU)."""
    import dataclasses

    import torch

    from pyvi.data import mnist
    from pyvi.vae import VAE

    data = [mnist("embedded", split, device=device) for split in ("train", "test")]
    data = [dataclasses.replace(d, images=d.images[:n], labels=d.labels[:n]) for d, n in zip(data, VAE_IMAGES)]
    torch.manual_seed(0)
    return VAE(hidden=64).to(device), *data


def vae(out: Path, rank: int) -> None:
    import torch

    from pyvi import distributed as d
    from pyvi.vae.train import train
    from pyvi.vae.evaluate import iwae_log_likelihood

    model, train_data, test_data = vae_setup()
    group = d.current()
    indices = torch.arange(64)
    rows = group.rows(len(indices))
    bits = train_data.batch(indices[rows.start:rows.stop], seed=BITS_SEED, first_row=rows.start)
    torch.save(bits, out / f"vae-bits-{rank}.pt")
    first = train(model, train_data, test_data, epochs=1, checkpoint=out / "vae-epoch1.pt", **VAE_RUN)
    d.current().barrier()  # rank 0 has written the checkpoint
    model, train_data, test_data = vae_setup()
    history = train(model, train_data, test_data, epochs=2, checkpoint=out / "vae-epoch2.pt",
                    resume=out / "vae-epoch1.pt", **VAE_RUN)
    iwae = iwae_log_likelihood(model, test_data, torch.arange(50), 5, seed=7, batch_size=20)
    torch.save({"model": model.state_dict(), "first": first, "history": history, "iwae": iwae},
               out / f"vae-{rank}.pt")


#: The flow fits: the fast path (fused RealNVP on the banana's fused op) long enough to converge,
#: and a few autograd steps (the banana's torch reference density).
FIT_RUN = dict(batch_size=256, lr=5e-3, seed=3, progress=False)
FIT_STEPS = {"fused": 1500, "reference": 20}


def fit_flow(target_impl: str, seed: int = 3):
    """A fresh flow (the same initial parameters on every process) fitted to the banana, its result."""
    from pyvi.flows import RealNVP
    from pyvi.vi import fit

    flow = RealNVP(seed=0).double()
    result = fit(flow, Banana.default(), num_steps=FIT_STEPS[target_impl], target_impl=target_impl,
                 **{**FIT_RUN, "seed": seed})
    return flow, result


def flows(out: Path, rank: int) -> None:
    import torch

    from pyvi.vi import kl

    for target_impl in FIT_STEPS:
        flow, result = fit_flow(target_impl)
        estimate = kl(flow, Banana.default(), num_samples=20_000, seed=1)
        torch.save({"params": flow.state_dict(), "elbo": result.elbo, "batch_size": result.batch_size,
                    "kl": estimate.value, "kl_se": estimate.standard_error}, out / f"fit-{target_impl}-{rank}.pt")


def vae_cuda(out: Path, rank: int) -> None:
    """Two epochs on each process's own GPU (NCCL all-reduce), for the 2-GPU test."""
    import torch

    from pyvi.vae.train import train

    model, train_data, test_data = vae_setup("cuda")
    history = train(model, train_data, test_data, epochs=2, **VAE_RUN)
    torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "history": history},
               out / f"vae-cuda-{rank}.pt")


def fit_cuda(out: Path, rank: int) -> None:
    """vi.fit's device step on each process's own GPU (NCCL all-reduce), for the 2-GPU test."""
    import torch

    from pyvi.flows import RealNVP
    from pyvi.vi import fit

    flow = RealNVP(seed=0).double().to("cuda")
    result = fit(flow, Banana.default(), num_steps=200, **FIT_RUN)
    torch.save({"params": {k: v.cpu() for k, v in flow.state_dict().items()}, "elbo": result.elbo},
               out / f"fit-cuda-{rank}.pt")


def _summed_gradients(rank: int, shm: bool) -> tuple[np.ndarray, bool]:
    """Three data-parallel sums of this rank's random gradients (an input-major weight, a bias
    that misses its gradient at step 1, a value) with weight 0.5, through shared memory or gloo;
    and whether the shared memory was used."""
    import os

    import torch

    os.environ["PYVI_DISTRIBUTED_SHM"] = "1" if shm else "0"
    torch.manual_seed(100 + rank)
    weight, bias = torch.nn.Parameter(torch.randn(30, 20).t()), torch.nn.Parameter(torch.randn(7))
    parallel = distributed.DataParallel(distributed.current(), [weight, bias])
    sums = []
    for step in range(3):  # both sets of slots, then the first again
        weight.grad, bias.grad = torch.randn(30, 20).t(), (None if step == 1 else torch.randn(7))
        total = parallel.sum_gradients_(torch.tensor(float(rank + step)), weight=0.5)
        sums.append(torch.cat([weight.grad.t().reshape(-1), bias.grad, total]).numpy().copy())
    return np.stack(sums), parallel._flat[1].shared is not None


#: step_'s parameters: an input-major weight whose shard bound falls inside it, a bias, an odd size.
STEP_SHAPES = ((40, 30), (7,), (3, 5))


def _stepped(rank: int, shm: bool, replicated: bool = False) -> dict[str, np.ndarray]:
    """Four data-parallel Adam steps (DataParallel.step_) of this rank's random gradients (a bias
    misses its gradient at step 1, another is laid out unlike its parameter at step 2; the second
    param group has another learning rate), sharded
    through shared memory or replicated over gloo: after each step every parameter and moment."""
    import os

    import torch

    os.environ["PYVI_DISTRIBUTED_SHM"] = "1" if shm else "0"
    torch.manual_seed(0)  # the same start everywhere (DataParallel broadcasts rank 0's anyway)
    weight = torch.nn.Parameter(torch.randn(*STEP_SHAPES[0]).t())
    bias, other = torch.nn.Parameter(torch.randn(*STEP_SHAPES[1])), torch.nn.Parameter(torch.randn(*STEP_SHAPES[2]))
    optimizer = torch.optim.Adam([{"params": [weight, bias]}, {"params": [other], "lr": 0.05}], lr=0.01, fused=True)
    parallel = distributed.DataParallel(distributed.current(), [weight, bias, other])
    parallel._replicated = replicated  # (True: the shared sum, then the whole Adam in every process)
    torch.manual_seed(200 + rank)
    record: dict[str, list] = {"params": [], "moments": [], "grad_none": []}
    for step in range(4):
        weight.grad = torch.randn(*STEP_SHAPES[0]).t()
        bias.grad = None if step == 1 else torch.randn(*STEP_SHAPES[1])
        # At step 2 a gradient laid out unlike its parameter (copied into the slot, not read in place).
        other.grad = torch.randn(*STEP_SHAPES[2][::-1]).t() if step == 2 else torch.randn(*STEP_SHAPES[2])
        parallel.step_(optimizer)
        record["params"].append(torch.cat([weight.detach().t().reshape(-1), bias.detach(), other.detach().reshape(-1)]))
        record["moments"].append(torch.cat([optimizer.state[p][key].t().reshape(-1) if p is weight
                                            else optimizer.state[p][key].reshape(-1)
                                            for key in ("exp_avg", "exp_avg_sq") for p in (weight, bias, other)]))
        record["grad_none"].append(all(p.grad is None for p in (weight, bias, other)))
    shared = parallel._shared_step is not None
    block = parallel._shared_step.block if shared else None
    try:  # (every process raises, before any collective)
        parallel.step_(torch.optim.Adam([weight], fused=True))
        other_optimizer = "accepted"
    except ValueError as error:
        other_optimizer = str(error)
    parallel.release()
    private = block is None or all(p.untyped_storage().data_ptr() != block.untyped_storage().data_ptr()
                                   for p in (weight, bias, other))
    return {"params": torch.stack(record["params"]).numpy(), "moments": torch.stack(record["moments"]).numpy(),
            "grad_none": np.array(record["grad_none"]), "shared": shared, "private": private,
            "other_optimizer": other_optimizer,
            "weight_stride": np.array(weight.stride())}


def shared_sum(out: Path, rank: int) -> None:
    import torch

    shm, used = _summed_gradients(rank, shm=True)
    gloo, gloo_used = _summed_gradients(rank, shm=False)
    np.savez(out / f"shared-sum-{rank}.npz", shm=shm, gloo=gloo, used=used, gloo_used=gloo_used)
    for shm in (True, False):
        np.savez(out / f"shared-step-{'shm' if shm else 'gloo'}-{rank}.npz", **_stepped(rank, shm))
    # Rank 1 fails while rank 0 waits in the shared sum's barrier.
    started = time.perf_counter()
    try:
        _summed_gradients(rank, shm=True)  # (sets PYVI_DISTRIBUTED_SHM=1 again)
        group = distributed.current()
        with group.guard():
            p = torch.nn.Parameter(torch.zeros(5))
            parallel = distributed.DataParallel(group, [p])
            p.grad = torch.ones(5)
            parallel.sum_gradients_()
            if rank == 1:
                time.sleep(2.0)
                raise ValueError("boom on rank 1")
            parallel.sum_gradients_()
        caught = {"type": None}
    except Exception as exc:  # noqa: BLE001  (recorded for the test)
        caught = {"type": type(exc).__name__, "message": str(exc), "rank": getattr(exc, "rank", None)}
    caught["seconds"] = time.perf_counter() - started
    (out / f"shared-sum-error-{rank}.json").write_text(json.dumps(caught))


def shared_step_3(out: Path, rank: int) -> None:
    """Three processes: the sharded step against the replicated one through the same shared-memory
    sum (rank order: the same additions), bit for bit."""
    for replicated in (False, True):
        np.savez(out / f"shared-step-3-{'replicated' if replicated else 'sharded'}-{rank}.npz",
                 **_stepped(rank, shm=True, replicated=replicated))


#: Processes per scenario (2 unless named here).
WORLD_SIZES = {"shared_step_3": 3}

SCENARIOS = {"hmc": hmc, "error": error, "vae": vae, "flows": flows, "vae_cuda": vae_cuda, "fit_cuda": fit_cuda,
             "shared_sum": shared_sum, "shared_step_3": shared_step_3}

if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    group = distributed.current()
    assert group is not None and group.world_size == WORLD_SIZES.get(scenario, 2), group
    SCENARIOS[scenario](out, group.rank)
