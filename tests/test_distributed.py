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
    """Runs the scenario on its processes (2 unless distributed_worker.WORLD_SIZES says otherwise;
    torchrun --standalone: a free port per launch)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    environment.update({"PYTHONPATH": os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")]),
                        "OMP_NUM_THREADS": "1", "PYVI_DISTRIBUTED_TIMEOUT": "120", **(env or {})})
    processes = str(distributed_worker.WORLD_SIZES.get(scenario, 2))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", processes, str(WORKER),
               scenario, str(out)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def launched(tmp_path_factory, scenario: str) -> Path:
    """A folder with what the scenario's processes wrote (one launch per test module)."""
    out = tmp_path_factory.mktemp(scenario)
    torchrun(scenario, out)
    return out


@pytest.fixture(scope="module")
def hmc_run(tmp_path_factory) -> Path:
    return launched(tmp_path_factory, "hmc")


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


def test_more_processes_than_chains_or_batch_rows_is_refused_clearly():
    with pytest.raises(ValueError, match=r"num_chains=1 is less than the number of processes \(2\)"):
        Group(0, 2, "gloo").share(1, "num_chains")
    with pytest.raises(ValueError, match=r"batch_size=2 is less than the number of processes \(3\)"):
        Group(1, 3, "gloo").share(2, "batch_size")
    # A batch need not divide evenly (each share's loss is weighted by its size); an epoch's short
    # last batch may leave a process without rows.
    assert [Group(rank, 2, "gloo").rows(129) for rank in (0, 1)] == [range(0, 65), range(65, 129)]
    assert [Group(rank, 2, "gloo").rows(1) for rank in (0, 1)] == [range(0, 1), range(1, 1)]


def test_rank_seeds_differ_between_ranks():
    seeds = {Group(rank, 4, "gloo").rank_seed(7) for rank in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**64 for s in seeds)


def test_bad_timeout_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PYVI_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PYVI_DISTRIBUTED_TIMEOUT"):
        distributed._timeout()


def test_flat_gradients_views_keep_each_parameters_layout_and_return_a_copy_of_the_values():
    """DataParallel's kept buffer: the gradients go in as laid out (an input-major weight stays
    input-major), a missing one counts as zeros, the sums become the ``.grad`` without a copy
    back, a gradient that is its view already is left as it is, and the values come back as a
    copy (the buffer is the next step's)."""
    import torch

    weight = torch.nn.Parameter(torch.randn(6, 4).t())  # input-major, as the fused VAE's
    bias = torch.nn.Parameter(torch.randn(3))
    weight.grad = torch.randn(6, 4).t()
    expected = 2 * weight.grad
    flat = distributed._FlatGradients([weight, bias], num_values=1)
    flat.gather_([torch.tensor(1.5)]).mul_(2)  # (the all-reduce's sum of two equal processes)
    values = flat.scatter_()
    assert torch.equal(values, torch.tensor([3.0]))
    assert torch.equal(weight.grad, expected) and weight.grad.stride() == weight.stride()
    assert weight.grad.data_ptr() == flat.views[0].data_ptr()
    assert torch.equal(bias.grad, torch.zeros(3))
    bias.grad += 1.0  # accumulated in place into its view: gathered as it is
    flat.gather_([0.5])
    assert torch.equal(flat.views[1], torch.ones(3)) and torch.equal(values, torch.tensor([3.0]))


def test_shared_memory_sum_only_when_every_process_is_on_this_machine(monkeypatch):
    """torchrun's LOCAL_WORLD_SIZE below WORLD_SIZE (several machines) or PYVI_DISTRIBUTED_SHM=0
    keeps the gradient sum on gloo."""
    from pyvi._shared_memory import wanted as _wanted

    group = Group(0, 2, "gloo")
    monkeypatch.delenv("PYVI_DISTRIBUTED_SHM", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _wanted(group)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert not _wanted(group)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert not _wanted(group)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("PYVI_DISTRIBUTED_SHM", "0")
    assert not _wanted(group)


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


@pytest.mark.parametrize("backend", distributed_worker.NUTS_BACKENDS)
def test_nuts_two_processes_give_exactly_the_single_process_draws(hmc_run, backend):
    """NUTS's warm-up adapts each chain's step size and metric on its own, so a chain run by rank 1
    (chains 3 and 4, streams (seed, 3) and (seed, 4)) ends the same as in one process: every draw,
    warm-up row and statistic, bit for bit."""
    from pyvi.hmc import sample
    from pyvi.targets import Banana

    single = sample(Banana.default(), distributed_worker.HMC_START, backend=backend, num_threads=1, kernel="nuts",
                    warn=False, **distributed_worker.NUTS_RUN)
    expected = distributed_worker.nuts_fields(single)
    gathered = np.load(hmc_run / f"nuts-{backend}-0.npz")
    own = np.load(hmc_run / f"nuts-{backend}-1.npz")
    assert sorted(gathered.files) == sorted(expected)
    for name, value in expected.items():
        assert gathered[name].dtype == value.dtype and np.array_equal(gathered[name], value), name
        assert np.array_equal(own[name], value[3:]), name
    assert not np.array_equal(expected["inv_metric"], 1.0)  # the windows ran


def test_hmc_seed_none_takes_rank_0s_seed_everywhere(hmc_run):
    from pyvi.hmc import sample
    from pyvi.targets import Banana

    ranks = [np.load(hmc_run / f"hmc-entropy-{rank}.npz") for rank in (0, 1)]
    assert ranks[0]["seed"] == ranks[1]["seed"]
    single = sample(Banana.default(), distributed_worker.HMC_START, backend="cpp",
                    **{**distributed_worker.HMC_RUN, "seed": int(ranks[0]["seed"])})
    assert np.array_equal(ranks[0]["samples"], single.samples)
    assert np.array_equal(ranks[1]["samples"], single.samples[3:])


def test_hmc_torch_backend_runs_each_block_on_its_own_generator(hmc_run):
    """The torch backend draws all its chains from one generator, so a process's block has its own:
    rank 0's block is the single-process run of its 3 chains (seed unchanged), rank 1's that of
    its 2 chains seeded from (seed, 3); rank 0 gathers both."""
    from pyvi.hmc import sample
    from pyvi.targets import Banana

    run = distributed_worker.HMC_RUN
    first = sample(Banana.default(), distributed_worker.HMC_START, backend="torch", **{**run, "num_chains": 3})
    seed = int(np.random.SeedSequence([run["seed"], 3]).generate_state(1, np.uint64)[0])
    second = sample(Banana.default(), distributed_worker.HMC_START, backend="torch",
                    **{**run, "num_chains": 2, "seed": seed})
    gathered = np.load(hmc_run / "hmc-torch-0.npz")
    for name in gathered.files:
        expected = np.concatenate([getattr(first, name), getattr(second, name)])
        assert np.array_equal(gathered[name], expected), name


def test_a_failing_rank_stops_the_others_with_its_error_within_seconds(tmp_path):
    torchrun("error", tmp_path)
    failed, waiting = (json.loads((tmp_path / f"error-{rank}.json").read_text()) for rank in (1, 0))
    assert failed["type"] == "ValueError" and "boom on rank 1" in failed["message"]
    assert waiting["type"] == "RankFailedError" and waiting["rank"] == 1
    assert "rank 1 failed with ValueError: boom on rank 1" in waiting["message"]
    assert "log_prob_and_grad" in waiting["message"]  # the failed rank's traceback comes along
    # Rank 1 fails 2 s in; rank 0 learns of it at once, not after the 120 s collective timeout.
    assert waiting["seconds"] < 20, waiting


@pytest.fixture(scope="module")
def shared_sum_run(tmp_path_factory) -> Path:
    return launched(tmp_path_factory, "shared_sum")


def test_shared_memory_sum_gives_gloos_sum_bit_for_bit_and_stops_when_a_peer_fails(shared_sum_run):
    """Two processes of one machine sum gradients through shared memory (pyvi._shared_sum):
    exactly gloo's all-reduce (a + b = b + a), the same bits on both, across both sets of slots;
    a process that fails meanwhile stops the other within seconds (the barrier breaks)."""
    import torch

    tmp_path = shared_sum_run
    ranks = [np.load(tmp_path / f"shared-sum-{rank}.npz") for rank in (0, 1)]
    assert all(r["used"] and not r["gloo_used"] for r in ranks)  # shared memory, then gloo
    expected = []
    for rank in (0, 1):  # each rank's gradients, as the worker drew them, weighted 0.5
        torch.manual_seed(100 + rank)
        torch.randn(30, 20), torch.randn(7)  # (the parameters)
        steps = []
        for step in range(3):
            weight = torch.randn(30, 20)
            bias = torch.zeros(7) if step == 1 else torch.randn(7)
            steps.append(0.5 * torch.cat([weight.reshape(-1), bias, torch.tensor([float(rank + step)])]))
        expected.append(torch.stack(steps))
    expected = (expected[0] + expected[1]).numpy()
    for r in ranks:
        assert np.array_equal(r["shm"], r["gloo"]) and np.array_equal(r["shm"], expected)
    failed, waiting = (json.loads((tmp_path / f"shared-sum-error-{rank}.json").read_text()) for rank in (1, 0))
    assert failed["type"] == "ValueError" and "boom on rank 1" in failed["message"]
    assert waiting["type"] == "RankFailedError" and waiting["rank"] == 1, waiting
    assert waiting["seconds"] < 20, waiting


def test_sharded_adam_step_gives_the_replicated_step_bit_for_bit(shared_sum_run):
    """DataParallel.step_ between two processes of one machine shards Adam (pyvi._shared_step): each
    process sums and updates its half of the shared parameters and moments, which must be exactly
    the replicated step's (gloo's sum, then the whole fused Adam in every process), step after step,
    with a missing gradient and two learning rates; .grad is None after a step, another optimizer
    is a ValueError, and release() leaves the parameters in private memory with their layout."""
    runs = {(kind, rank): np.load(shared_sum_run / f"shared-step-{kind}-{rank}.npz") for kind in ("shm", "gloo")
            for rank in (0, 1)}
    for rank in (0, 1):
        shm, gloo = runs["shm", rank], runs["gloo", rank]
        assert shm["shared"] and not gloo["shared"]
        assert np.array_equal(shm["params"], gloo["params"]) and np.array_equal(shm["moments"], gloo["moments"])
        assert np.array_equal(shm["params"], runs["shm", 0]["params"])
        assert shm["grad_none"].all() and shm["private"] and tuple(shm["weight_stride"]) == (1, 30)
        assert "another optimizer than its first one" in str(shm["other_optimizer"])
    assert not np.array_equal(runs["shm", 0]["params"][0], runs["shm", 0]["params"][1])  # the steps moved them


def test_sharded_adam_step_of_three_processes_gives_the_replicated_step_bit_for_bit(tmp_path):
    """Three processes (two cores: slow, but the sums' order is what is tested): each sums its third
    in rank order, its own part read from its gradient (also when that is a copy: a missing or
    oddly laid out gradient), exactly as the replicated step's shared-memory sum does."""
    torchrun("shared_step_3", tmp_path)
    sharded = [np.load(tmp_path / f"shared-step-3-sharded-{rank}.npz") for rank in range(3)]
    replicated = [np.load(tmp_path / f"shared-step-3-replicated-{rank}.npz") for rank in range(3)]
    for rank in range(3):
        assert sharded[rank]["shared"] and not replicated[rank]["shared"]
        for key in ("params", "moments"):
            assert np.array_equal(sharded[rank][key], replicated[rank][key]), (rank, key)
            assert np.array_equal(sharded[rank][key], sharded[0][key]), (rank, key)


def test_shard_pieces_cover_every_value_once_in_balanced_aligned_pieces():
    from pyvi._shared_step import PIECE_ALIGN, shard_pieces

    for sizes, world in (([401_408, 512, 512, 802_816, 784], 2), ([300, 100], 3), ([5], 2), ([0, 1000, 0, 64], 4)):
        shards = shard_pieces(sizes, world)
        assert len(shards) == world
        covered = [np.zeros(size, int) for size in sizes]
        for shard in shards:
            for tensor, start, stop in shard:
                assert start % PIECE_ALIGN == 0 or start == 0
                assert stop % PIECE_ALIGN == 0 or stop == sizes[tensor]
                covered[tensor][start:stop] += 1
        assert all((c == 1).all() for c in covered)
        if sum(sizes) >= 1000:
            totals = [sum(stop - start for _, start, stop in shard) for shard in shards]
            assert max(totals) - min(totals) <= 2 * PIECE_ALIGN, totals


def test_checkpoint_writes_views_of_a_shared_block_as_their_own_values(tmp_path):
    """Under torchrun the parameters are views of one shared block (pyvi._shared_step); torch.save
    would write the whole block for each checkpoint: save_checkpoint copies such views."""
    import torch

    from pyvi.vae.checkpoint import save_checkpoint

    block = torch.arange(100_000, dtype=torch.float32)
    weight = block[10:20].view(2, 5)
    save_checkpoint(tmp_path / "c.pt", {"model": {"w": weight}, "optimizer": {"state": {0: {"m": block[:3]}}}})
    loaded = torch.load(tmp_path / "c.pt", weights_only=False)
    assert torch.equal(loaded["model"]["w"], weight) and torch.equal(loaded["optimizer"]["state"][0]["m"], block[:3])
    assert (tmp_path / "c.pt").stat().st_size < 10_000


# -- flows: vi.fit ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory) -> Path:
    return launched(tmp_path_factory, "flows")


@pytest.mark.parametrize("target_impl", list(distributed_worker.FIT_STEPS))
def test_fit_processes_end_with_the_same_flow_and_history(fit_run, target_impl):
    """Every process takes the same Adam steps from the same summed gradient: identical parameters
    and bound history, bit for bit (fast path and autograd); the result reports the global batch."""
    ranks = [torch_load(fit_run / f"fit-{target_impl}-{rank}.pt") for rank in (0, 1)]
    for name, value in ranks[0]["params"].items():
        assert torch_equal(value, ranks[1]["params"][name]), name
    assert np.array_equal(ranks[0]["elbo"], ranks[1]["elbo"]) and np.isfinite(ranks[0]["elbo"]).all()
    assert ranks[0]["batch_size"] == distributed_worker.FIT_RUN["batch_size"]


def test_fit_two_processes_reach_the_single_process_kl(fit_run):
    """The 2-process fit (each process 128 of the 256 samples per step, its own stream) reaches the
    KL of the 1-process fit within the Monte Carlo error of training at this budget: over seeds 3-5
    the 1-process KL after 1,500 steps spans 0.0039-0.0104 (standard error of each estimate ~0.001),
    so both must be below 0.02 and within 0.01 of each other."""
    from pyvi.targets import Banana
    from pyvi.vi import kl

    flow, _ = distributed_worker.fit_flow("fused")
    single = kl(flow, Banana.default(), num_samples=20_000, seed=1).value
    double = torch_load(fit_run / "fit-fused-0.pt")["kl"]
    assert 0 < single < 0.02 and 0 < double < 0.02, (single, double)
    assert abs(single - double) < 0.01, (single, double)


def test_fit_one_process_is_the_plain_run_bit_for_bit(monkeypatch):
    """torchrun with one process takes the single-process path: the same parameters, bit for bit."""
    from pyvi.flows import RealNVP
    from pyvi.targets import Banana
    from pyvi.vi import fit

    runs = []
    for launched in (False, True):
        if launched:
            monkeypatch.setenv("RANK", "0")
            monkeypatch.setenv("WORLD_SIZE", "1")
        flow = RealNVP(seed=0).double()
        fit(flow, Banana.default(), num_steps=30, seed=2, progress=False)
        runs.append(flow.state_dict())
    assert all(torch_equal(runs[0][name], runs[1][name]) for name in runs[0])


# -- VAE --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    return launched(tmp_path_factory, "vae")


def test_vae_processes_binarise_their_rows_with_the_whole_batch_bits(vae_run):
    import torch

    _, train_data, _ = distributed_worker.vae_setup()
    whole = train_data.batch(torch.arange(64), seed=distributed_worker.BITS_SEED)
    parts = [torch_load(vae_run / f"vae-bits-{rank}.pt") for rank in (0, 1)]
    assert [len(part) for part in parts] == [32, 32]
    assert torch.equal(torch.cat(parts), whole)


#: Parameters of 2 processes vs 1 after 10 Adam steps (2 epochs of 5 batches). The gradient sums
#: differ only in the order of float32 additions (~1e-7 relative), and so do the parameters: the
#: bulk within 1e-6 (observed 99th percentile <= 2e-8 of weights ~0.05-0.7). Adam's step is about
#: lr * m / sqrt(v): for a gradient that nearly cancels over the batch its size hangs on the last
#: bits, so a few weights move further apart (observed 1.4e-5 in one encoder weight; lr = 1e-3).
VAE_BULK_ATOL = 1e-6
VAE_MAX_ATOL = 1e-4


def _compare_vae(state, expected):
    import torch

    for name, value in expected.items():
        difference = (state[name] - value).abs()
        assert float(difference.max()) <= VAE_MAX_ATOL, name
        assert float(torch.quantile(difference.flatten().double(), 0.99)) <= VAE_BULK_ATOL, name


def test_vae_two_processes_train_as_one(vae_run):
    """Same seed, same global batch: the processes hold identical parameters (bit for bit) and the
    single-process ones up to float reduction order; the ELBO history and the IWAE estimate are
    the single-process ones to float32 reduction precision."""
    from pyvi.vae.train import train
    from pyvi.vae.evaluate import iwae_log_likelihood
    import torch

    model, train_data, test_data = distributed_worker.vae_setup()
    single = train(model, train_data, test_data, epochs=2, **distributed_worker.VAE_RUN)
    iwae = iwae_log_likelihood(model, test_data, torch.arange(50), 5, seed=7, batch_size=20)
    ranks = [torch_load(vae_run / f"vae-{rank}.pt") for rank in (0, 1)]
    for name, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][name]), name
    for key in ("epoch", "train_elbo", "test_elbo", "settings"):
        assert ranks[0]["history"][key] == ranks[1]["history"][key], key
    assert ranks[0]["iwae"] == ranks[1]["iwae"]
    _compare_vae(ranks[0]["model"], model.state_dict())
    for key in ("train_elbo", "test_elbo"):
        np.testing.assert_allclose(ranks[0]["history"][key], single[key], rtol=1e-4)
    assert ranks[0]["first"]["train_elbo"] == ranks[0]["history"]["train_elbo"][:1]
    assert ranks[0]["iwae"] == pytest.approx(iwae, rel=1e-4)


def test_vae_two_process_checkpoint_resumes_in_one_process(vae_run, tmp_path):
    """The checkpoint rank 0 wrote after epoch 1 of the 2-process run, resumed by one process for
    epoch 2, gives the 2-process run's epoch 2 (up to float reduction order)."""
    from pyvi.vae.train import train

    model, train_data, test_data = distributed_worker.vae_setup()
    history = train(model, train_data, test_data, epochs=2, resume=vae_run / "vae-epoch1.pt",
                    checkpoint=tmp_path / "resumed.pt", **distributed_worker.VAE_RUN)
    two = torch_load(vae_run / "vae-0.pt")
    assert history["epoch"] == [1, 2]
    _compare_vae(two["model"], model.state_dict())
    np.testing.assert_allclose(history["train_elbo"], two["history"]["train_elbo"], rtol=1e-4)


def torch_load(path: Path):
    import torch

    return torch.load(path, weights_only=False)


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.cuda
@pytest.mark.skipif(_gpus() < 2, reason="needs 2 CUDA devices (NCCL takes one GPU per process)")
def test_vae_on_two_gpus_trains_as_one_gpu(tmp_path):
    """NCCL between 2 GPUs, the eager step (no CUDA graphs under torchrun): the processes agree bit
    for bit and match one GPU's eager run up to float reduction order (the tolerances of the CPU
    test)."""
    from pyvi.vae.train import train

    torchrun("vae_cuda", tmp_path)
    ranks = [torch_load(tmp_path / f"vae-cuda-{rank}.pt") for rank in (0, 1)]
    for name, value in ranks[0]["model"].items():
        assert torch_equal(value, ranks[1]["model"][name]), name
    model, train_data, test_data = distributed_worker.vae_setup("cuda")
    train(model, train_data, test_data, epochs=2, cuda_graph=False, **distributed_worker.VAE_RUN)
    _compare_vae(ranks[0]["model"], {k: v.cpu() for k, v in model.state_dict().items()})


@pytest.mark.cuda
@pytest.mark.skipif(_gpus() < 2, reason="needs 2 CUDA devices (NCCL takes one GPU per process)")
def test_fit_device_step_on_two_gpus_keeps_the_processes_together(tmp_path):
    """vi.fit's device-resident step with the NCCL all-reduce between backward and Adam: both
    processes end with the same flow and a finite, rising bound."""
    torchrun("fit_cuda", tmp_path)
    ranks = [torch_load(tmp_path / f"fit-cuda-{rank}.pt") for rank in (0, 1)]
    for name, value in ranks[0]["params"].items():
        assert torch_equal(value, ranks[1]["params"][name]), name
    elbo = ranks[0]["elbo"]
    assert np.array_equal(elbo, ranks[1]["elbo"]) and np.isfinite(elbo).all()
    assert elbo[-50:].mean() > elbo[:50].mean()


def test_a_share_that_does_not_fit_its_batch_is_refused():
    import torch

    from pyvi.data import mnist
    from pyvi.vae import VAE

    model, x = VAE(hidden=8), torch.zeros(3, 784)
    with pytest.raises(ValueError, match=r"share=\(2, 4\) cannot hold 3 rows"):
        model.elbo(x, share=(2, 4))
    with pytest.raises(ValueError, match="share"):
        model.iwae_bound(x, 2, share=(-1, 4))
    with pytest.raises(ValueError, match="first_row"):
        mnist("embedded", "test").batch(torch.arange(2), seed=0, first_row=-1)
