"""HMC on the torch backend (issue #11): a user's torch model on the CPU, and many chains in lockstep.

- Logistic regression on scikit-learn's breast-cancer data (569 x 31, written as a TorchTarget),
  step 0.05, L = 10, no adaptation: torch CPU with 1 chain (numpy backend on the same posterior as
  the baseline) and with 64 chains; the cpp and numba rows run the same model as a NumbaTarget
  (issue #11's user targets; NumPyro's row is in bench_user_targets.py).
- Many chains: the banana, 16,384 chains x 1,000 iterations x L = 30 at step 0.05 (no adaptation):
  cpp on all cores (the baseline), torch on the CPU (all cores), torch on CUDA (skipped without a
  GPU) and NumPyro's vectorised chains (``chain_method="vectorized"``; skipped without numpyro).
  Targets: torch on CUDA <= 1 ns per chain-leapfrog step on a datacenter GPU, torch on the CPU
  within 3x of cpp.

``extra_info["ns_per_chain_step"]`` is the median time over chains x iterations x L.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import QUICK, size

import pyvi.targets
from pyvi import hmc
from pyvi.models import LogisticRegression, logistic_torch_target
from pyvi.models.logistic_regression import logistic_log_joint
from pyvi.targets import Banana
from pyvi.testing import cuda_available

CORES = os.cpu_count() or 1


def _per_chain_step(benchmark, steps: int, digits: int) -> dict:
    """``ns_per_chain_step`` of the timed rounds (nothing when timing is disabled)."""
    if benchmark.stats is None:
        return {}
    return {"ns_per_chain_step": round(benchmark.stats.stats.median / steps * 1e9, digits)}

# -- logistic regression ---------------------------------------------------------------------------------

MODEL = LogisticRegression.breast_cancer()
LR_STEP, LR_L = 0.05, 10
LR_ITERATIONS = size(2_000, 20)  # one chain
LR_CHAIN_ITERATIONS = size(500, 10)  # 64 chains


def _logistic_target(impl: str):
    if impl == "torch":
        return logistic_torch_target(MODEL)
    if impl == "numpy":
        return MODEL
    return pyvi.targets.NumbaTarget(logistic_log_joint, MODEL.dim, data=MODEL.data)


def _logistic_run(target, backend: str, num_chains: int, iterations: int, threads: int):
    initial = np.zeros((num_chains, MODEL.dim))
    return hmc.sample(target, initial, num_samples=iterations // 2, num_warmup=iterations // 2, step_size=LR_STEP,
                      num_steps=LR_L, num_chains=num_chains, adapt_step_size=False, seed=7, backend=backend,
                      num_threads=threads, warn=False)  # the sampler is timed, not the run checks


@pytest.mark.parametrize("impl", ["torch", "cpp", "numba", "numpy"])
def test_logistic_regression_one_chain(benchmark, impl):
    benchmark.group = f"hmc: logistic regression (breast cancer, 31-D), 1 chain x {LR_ITERATIONS:,} iterations x L={LR_L}"
    target = _logistic_target(impl)
    check = _logistic_run(target, impl, 1, LR_ITERATIONS, 1)  # also compiles numba's sampler
    assert np.all(np.isfinite(check.samples)) and check.mean_accept_prob > 0.5
    rounds = 1 if impl == "numpy" else 3
    result = benchmark.pedantic(_logistic_run, args=(target, impl, 1, LR_ITERATIONS, 1), rounds=rounds, iterations=1)
    assert result.samples.shape == (1, LR_ITERATIONS // 2, MODEL.dim)
    steps = LR_ITERATIONS * LR_L
    benchmark.extra_info.update(impl=f"{impl}, 1 thread", baseline=impl == "numpy", threads=1, leapfrog_steps=steps,
                                **_per_chain_step(benchmark, steps, 1))


@pytest.mark.parametrize("impl", ["torch", "cpp", "numba"])
def test_logistic_regression_64_chains(benchmark, impl):
    benchmark.group = (f"hmc: logistic regression (breast cancer, 31-D), 64 chains x {LR_CHAIN_ITERATIONS:,} "
                       f"iterations x L={LR_L}")
    target = _logistic_target(impl)
    check = _logistic_run(target, impl, 64, LR_CHAIN_ITERATIONS, 1)
    assert np.all(np.isfinite(check.samples)) and check.mean_accept_prob > 0.5
    result = benchmark.pedantic(_logistic_run, args=(target, impl, 64, LR_CHAIN_ITERATIONS, 1), rounds=3,
                                iterations=1)
    assert result.samples.shape == (64, LR_CHAIN_ITERATIONS // 2, MODEL.dim)
    steps = 64 * LR_CHAIN_ITERATIONS * LR_L
    benchmark.extra_info.update(impl=f"{impl}, 1 thread", baseline=impl == "torch", threads=1, leapfrog_steps=steps,
                                **_per_chain_step(benchmark, steps, 2))


# -- many chains of the banana ------------------------------------------------------------------------------

BANANA = Banana.default()
MANY_CHAINS = size(16_384, 64)
MANY_ITERATIONS = size(1_000, 10)
MANY_L = 30


def _many_initial() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(MANY_CHAINS, 2))


def _pyvi_many(backend: str, **options):
    return hmc.sample(BANANA, _many_initial(), num_samples=MANY_ITERATIONS // 2, num_warmup=MANY_ITERATIONS // 2,
                      step_size=0.05, num_steps=MANY_L, num_chains=MANY_CHAINS, adapt_step_size=False, seed=1,
                      backend=backend, warn=False, **options)


def _numpyro_many():
    """NumPyro's HMC on the same density (the banana's sufficient statistics), the same settings,
    all chains vectorised in one XLA program; returns a runner and the draws of its first run."""
    if QUICK:
        pytest.skip("the NumPyro row runs at full size only (its XLA compile alone takes ~20 s)")
    jax = pytest.importorskip("jax")
    pytest.importorskip("numpyro")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from numpyro.infer import HMC, MCMC

    face = BANANA.numba_target()  # banana_params: the constants every backend uses

    def potential(theta):
        t1, t2 = theta[0], theta[1]
        residual = t1 + t2 * t2 - face.mean_y
        log_prob = (face.log_norm - 0.5 * face.num_data * face.lik_precision * residual * residual
                    - 0.5 * face.prior_precision * (t1 * t1 + t2 * t2))
        return -log_prob

    kernel = HMC(potential_fn=potential, step_size=0.05, num_steps=MANY_L, trajectory_length=None, adapt_step_size=False,
                 adapt_mass_matrix=False)
    mcmc = MCMC(kernel, num_warmup=MANY_ITERATIONS // 2, num_samples=MANY_ITERATIONS // 2, num_chains=MANY_CHAINS,
                chain_method="vectorized", progress_bar=False)
    initial = jnp.asarray(_many_initial())

    def run():
        mcmc.run(jax.random.PRNGKey(1), init_params=initial)
        samples = mcmc.get_samples(group_by_chain=True)
        samples.block_until_ready()
        return np.asarray(samples)

    return run, run()  # the first run compiles


MANY_IMPLS = ["cpp", "torch-cpu", "torch-cuda", "numpyro-vectorized"]


@pytest.mark.parametrize("impl", MANY_IMPLS)
def test_many_chains(benchmark, impl):
    benchmark.group = (f"hmc: banana, {MANY_CHAINS:,} chains x {MANY_ITERATIONS:,} iterations x L={MANY_L}, "
                       "all cores")
    extra = {}
    if impl == "cpp":
        run = lambda: _pyvi_many("cpp", num_threads=CORES).samples  # noqa: E731
    elif impl == "torch-cpu":
        run = lambda: _pyvi_many("torch", num_threads=CORES).samples  # noqa: E731
        extra = {"dtype": "float64"}
    elif impl == "torch-cuda":
        if not cuda_available():
            pytest.skip("no CUDA device / CUDA build")
        run = lambda: _pyvi_many("torch", device="cuda").samples  # noqa: E731
        extra = {"device": torch.cuda.get_device_name(), "dtype": "float64", "cuda_graph": True}
    else:
        run, _ = _numpyro_many()
        extra = {"dtype": "float64", "jax_devices": str(__import__("jax").devices())}
    samples = run()  # correctness before timing
    assert samples.shape == (MANY_CHAINS, MANY_ITERATIONS // 2, 2) and np.all(np.isfinite(samples))
    if not QUICK:  # 8 million draws: the mean is well within 0.05 of the exact one
        mean, _ = BANANA.posterior_moments()
        assert np.all(np.abs(samples.reshape(-1, 2).mean(axis=0) - mean) < 0.05)
    rounds = 1 if impl == "numpyro-vectorized" else 3
    benchmark.pedantic(run, rounds=rounds, iterations=1)
    steps = MANY_CHAINS * MANY_ITERATIONS * MANY_L
    benchmark.extra_info.update(impl=impl, baseline=impl == "cpp", threads=CORES, leapfrog_steps=steps,
                                **_per_chain_step(benchmark, steps, 3), **extra)
