"""GPU benchmarks: pyvi's CUDA paths against plain torch on the same GPU, eager and compiled.

Every row runs on the CUDA device (the module skips without a GPU or a CUDA build of pyvi). Each
timed round runs the workload ``inner`` times and then synchronises the device, so a round is
the GPU's own time plus one synchronisation; ``extra_info["per_call_us"]`` (median round / inner)
is what the GPU table shows. Correctness is checked before timing (fused against the reference).

Groups:
- flow training step (vi.fit's, float64): the device-resident step (pyvi/_fit_step.py) replayed
  from CUDA graphs ("fused, graph"), the same launched eagerly ("fused, eager"), the plain-torch
  reference step eagerly and under ``torch.compile(mode="reduce-overhead")`` (the peers);
- default 10,000-step fits (wall time of ``vi.fit``; compare with the CPU numbers in the README);
- VAE training step (batch 128, float32) and a 60,000-image epoch: DeviceEpoch graphs of the fused
  model and of the reference model, and the eager loops;
- banana log density + gradient (10^7 points) and the Bernoulli likelihood (5,000 x 20 x 784).

``PYVI_BENCH_COMPILE=0`` skips the torch.compile peers (each costs tens of seconds to compile);
``PYVI_BENCH_COMPILED`` lists the configurations that get one. bench/cuda_session.sh runs it all on a
GPU machine.

References:
    PyTorch, "CUDA semantics: asynchronous execution" (timing needs synchronisation).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from conftest import size
from pyvi import vi
from pyvi.flows import NICE, PlanarFlow, RealNVP
from pyvi.targets import Banana
from pyvi.testing import cuda_available

pytestmark = pytest.mark.skipif(not cuda_available(), reason="no CUDA device / CUDA build of pyvi")
COMPILE = os.environ.get("PYVI_BENCH_COMPILE", "1") == "1"

FLOWS = {
    "planar-K5-b256": (lambda: PlanarFlow(2, num_layers=5, seed=0), 256),
    "nice-3x5x3-b256": (lambda: NICE(2, num_couplings=3, hidden=5, depth=3, seed=0), 256),
    "realnvp-5x5x3-b256": (lambda: RealNVP(2, num_couplings=5, hidden=5, depth=3, seed=0), 256),
    "realnvp-default-b256": (lambda: RealNVP(seed=0), 256),
    "nice-default-b256": (lambda: NICE(seed=0), 256),
    "realnvp-8x64x2-b65536": (lambda: RealNVP(2, num_couplings=8, hidden=64, depth=2, seed=0), 65536),
}
#: The configurations whose compiled peer is timed (compiling each costs tens of seconds);
#: PYVI_BENCH_COMPILED="a,b" overrides the list.
COMPILED = set(os.environ.get("PYVI_BENCH_COMPILED", "planar-K5-b256,realnvp-default-b256,realnvp-8x64x2-b65536").split(","))


def _time(benchmark, fn, inner: int, rounds: int = 10) -> None:
    """Times ``inner`` calls of ``fn`` per round, synchronised; records the per-call median in us."""

    def run():
        for _ in range(inner):
            fn()
        torch.cuda.synchronize()

    run()  # warm
    benchmark.extra_info["inner"] = inner
    benchmark.pedantic(run, rounds=size(rounds, 1), iterations=1, warmup_rounds=size(1, 0))
    if benchmark.stats is not None:
        benchmark.extra_info["per_call_us"] = round(benchmark.stats.stats.median / inner * 1e6, 2)


@pytest.fixture(scope="module")
def banana() -> Banana:
    return Banana.default()


def _reference_step(flow, banana, batch, generator):
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3, fused=True)

    def step():
        optimizer.zero_grad(set_to_none=True)
        x, log_q = flow.rsample_and_log_prob(batch, generator)
        loss = (log_q - banana.log_prob(x, impl="reference")).mean()
        loss.backward()
        optimizer.step()

    return step


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", ["fused, graph", "fused, eager", "reference", "reference, compiled"])
@pytest.mark.parametrize("config", list(FLOWS))
def test_flow_training_step(benchmark, banana, config, variant, dtype):
    from pyvi._cuda_graph import GraphedSteps
    from pyvi._fit_step import DeviceFit, lr_schedule

    if dtype == torch.float32 and not config.startswith("realnvp-8x64x2"):
        pytest.skip("float32 rows for the wide configuration only")
    if variant == "reference, compiled" and (not COMPILE or config not in COMPILED):
        pytest.skip("compiled peer not timed for this configuration (PYVI_BENCH_COMPILE, COMPILED)")
    make, full_batch = FLOWS[config]
    batch = size(full_batch, 64)
    flow = make().to(device="cuda", dtype=dtype)
    benchmark.group = f"cuda flow training step: {config} {str(dtype)[6:]}"
    benchmark.extra_info.update({"impl": variant, "config": config, "batch": batch, "device": "cuda",
                                 "dtype": str(dtype)[6:], "num_params": flow.params.numel()})
    generator = torch.Generator(device="cuda").manual_seed(1)
    if variant.startswith("fused"):
        # Correctness before timing: the fused forward equals the reference on this GPU.
        z = torch.randn(512, 2, dtype=dtype, device="cuda", generator=generator)
        with torch.no_grad():
            flow.impl = "reference"
            want = flow(z)
            flow.impl = "fused"
            got = flow(z)
        tolerance = 1e-10 if dtype == torch.float64 else 2e-4
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
        fast = vi._fast_path(flow, banana, "fused")
        steps = 1_000_000  # more than the benchmark runs: every timed step updates
        state = DeviceFit(flow, fast.ops, fast.log_joint, steps, batch, 1, "elbo", lr_schedule(1e-3, steps, "constant"),
                          generator)
        runner = GraphedSteps(state.step, capture=variant == "fused, graph", generators=(generator,))
        inner = 16 if variant == "fused, graph" else 1

        def replay():
            runner.run(inner)

        _time(benchmark, replay, size(16 if batch <= 4096 else 2, 1), rounds=size(20, 1))
        if benchmark.stats is not None:
            benchmark.extra_info["per_call_us"] = round(benchmark.extra_info["per_call_us"] / inner, 2)
        assert np.isfinite(state.history[: int(state.index)].cpu().numpy()).all()
        return
    flow.impl = "reference"
    step = _reference_step(flow, banana, batch, generator)
    if variant == "reference, compiled":
        step = torch.compile(step, mode="reduce-overhead")
        for _ in range(3):  # compile and record the graphs outside the timing
            step()
    else:
        benchmark.extra_info["baseline"] = True
    _time(benchmark, step, size(16 if batch <= 4096 else 2, 1), rounds=size(20, 1))


@pytest.mark.parametrize("name", ["planar", "nice", "realnvp"])
def test_default_fit_wall_time(benchmark, banana, name):
    """A default vi.fit (10,000 steps, batch 256, float64) on the GPU: the wall time to compare with the
    CPU's (README: 1.5-2.5 s on one core of this project's CPU)."""
    make = {"planar": lambda: PlanarFlow(seed=0), "nice": lambda: NICE(seed=0), "realnvp": lambda: RealNVP(seed=0)}
    num_steps = size(10_000, 20)
    benchmark.group = "cuda default fit, 10,000 steps"
    benchmark.extra_info.update({"impl": f"vi.fit {name}, graph", "config": name, "device": "cuda",
                                 "num_steps": num_steps})
    results = []

    def run():
        flow = make[name]().double().cuda()
        results.append(vi.fit(flow, banana, num_steps=num_steps, progress=False))
        results.append(vi.kl(flow.cpu(), banana, 20_000).value)

    benchmark.pedantic(run, rounds=1, iterations=1)
    fit, kl = results[-2], results[-1]
    benchmark.extra_info.update({"fit_wall_s": round(fit.wall_time, 3), "exact_kl": round(kl, 4),
                                 "skipped": len(fit.skipped_steps)})


# -- VAE ------------------------------------------------------------------------------------------


def _full_size_data(images: int):
    """``images`` dynamically binarised digits on the GPU: the 4,000 embedded training digits tiled
    (full MNIST cannot be downloaded here; the step's cost does not depend on which digits)."""
    from pyvi.data import MNISTData, mnist

    data = mnist("embedded", "train")
    reps = -(-images // len(data))
    tiled = data.images.repeat(reps, 1)[:images].cuda()
    return MNISTData(tiled, data.labels.repeat(reps)[:images].cuda(), "dynamic", "embedded x tiled", "train")


@pytest.mark.parametrize("variant", ["fused, graph", "fused (custom linear), graph", "reference, graph",
                                     "fused, eager", "reference, eager"])
def test_vae_epoch(benchmark, variant, monkeypatch):
    """One epoch of 60,000 images (batch 128, float32): the target is <= 0.06 s fused."""
    from pyvi.vae import VAE
    from pyvi.vae.epoch import DeviceEpoch
    from pyvi.vae.train import _adam, train_epoch

    data = _full_size_data(size(60_000, 1000))
    impl = "fused" if variant.startswith("fused") else "reference"
    if "custom linear" in variant:
        monkeypatch.setattr(VAE, "cuda_linear", "custom")
    torch.manual_seed(0)
    model = VAE(impl=impl).cuda()
    optimizer = _adam(model, 1e-3)
    cpu_generator = torch.Generator().manual_seed(3)
    noise_generator = torch.Generator(device="cuda").manual_seed(4)
    benchmark.group = "cuda VAE epoch, 60,000 images, batch 128"
    benchmark.extra_info.update({"impl": variant, "images": len(data), "device": "cuda", "dtype": "float32"})
    if variant.endswith("graph"):
        runner = DeviceEpoch(model, optimizer, data, 128, noise_generator, capture=True)
        epoch = lambda: runner.run(cpu_generator)  # noqa: E731
    else:
        epoch = lambda: train_epoch(model, optimizer, data, 128, cpu_generator, noise_generator)  # noqa: E731
        if variant == "reference, eager":
            benchmark.extra_info["baseline"] = True
    elbo = epoch()  # warm (captures the graphs); the epoch's ELBO must be a number
    assert np.isfinite(elbo)
    _time(benchmark, epoch, 1, rounds=size(5, 1))


@pytest.mark.parametrize("variant", ["fused", "reference"])
def test_vae_step_ops(benchmark, variant):
    """The VAE step's forward + backward at batch 128 without the optimiser, eager (kernel + launch costs)."""
    from pyvi.vae import VAE

    torch.manual_seed(0)
    model = VAE(impl=variant).cuda()
    x = (torch.rand(128, 784, device="cuda") < 0.2).float()
    generator = torch.Generator(device="cuda").manual_seed(0)
    benchmark.group = "cuda VAE forward + backward, batch 128"
    benchmark.extra_info.update({"impl": variant, "device": "cuda", "dtype": "float32"})

    def step():
        model.zero_grad(set_to_none=True)
        (-model.elbo(x, generator=generator).mean()).backward()

    _time(benchmark, step, size(50, 1))


# -- banana and likelihood ops --------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["fused", "reference"])
def test_banana_log_joint(benchmark, banana, variant):
    n = size(10_000_000, 1000)
    theta = torch.randn(n, 2, dtype=torch.float64, device="cuda", requires_grad=True)
    benchmark.group = "cuda banana log p + gradient, 10^7 points"
    benchmark.extra_info.update({"impl": variant, "points": n, "device": "cuda", "dtype": "float64"})
    if variant == "reference":
        benchmark.extra_info["baseline"] = True

    def run(impl=variant):
        log_p = banana.log_prob(theta, impl=impl)
        (grad,) = torch.autograd.grad(log_p.sum(), theta)
        return grad

    torch.testing.assert_close(run(), run("reference"), rtol=1e-10, atol=1e-10)
    _time(benchmark, run, size(10, 1))


@pytest.mark.parametrize("variant", ["fused", "reference"])
def test_bernoulli_likelihood(benchmark, variant):
    from pyvi.vae.likelihood import bernoulli_log_likelihood

    samples = size(20, 2)
    logits = torch.randn(samples, 5000, 784, device="cuda")
    x = torch.rand(5000, 784, device="cuda")
    benchmark.group = "cuda Bernoulli log-likelihood forward, 5000 x 20 x 784"
    benchmark.extra_info.update({"impl": variant, "device": "cuda", "dtype": "float32"})
    if variant == "reference":
        benchmark.extra_info["baseline"] = True
    with torch.no_grad():
        want = bernoulli_log_likelihood(logits, x, seed=7, impl="reference")
        got = bernoulli_log_likelihood(logits, x, seed=7, impl="fused")
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-2)
        _time(benchmark, lambda: bernoulli_log_likelihood(logits, x, seed=7, impl=variant), size(20, 1))
