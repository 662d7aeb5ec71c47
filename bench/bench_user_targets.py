"""User targets at native speed (issue #11): the homework banana as a user's ``NumbaTarget`` against
pyvi's built-in banana, and NumPyro's HMC on the logistic-regression model as the peer.

- Banana (homework data): 1 chain x 20,000 iterations x L = 30 at step 0.05, no adaptation, one
  thread; the built-in target and the same density as a user's ``@njit`` function on
  ``backend="numba"`` (inlined into the sampler) and ``backend="cpp"`` (through the cfunc pointer).
  Targets: NumbaTarget on numba within 1.2x of the built-in on numba; on cpp within 1.5x of the
  built-in on cpp. The user's function has the built-in's arithmetic, so all four give the same
  draws, bit for bit (asserted before timing).
- Logistic regression (breast cancer, 31-D), 1 chain x 2,000 iterations x L = 10 at step 0.05, no
  adaptation: NumPyro's HMC (``adapt_step_size=False``, ``adapt_mass_matrix=False``) on the same
  log joint, in the group of bench/bench_hmc_torch.py's rows for pyvi's backends (the same sizes).
  Target: pyvi's fastest backend >= 5x NumPyro per leapfrog step. Needs the ``bench`` extra
  (``pip install pyvi[bench]``: numpyro, jax); skipped without it, and under PYVI_BENCH_QUICK=1
  (its XLA compile alone takes seconds).

``extra_info["ns_per_step"]`` is the median time per leapfrog step; the NumbaTarget rows carry the
first call's compile seconds (``compile_s``: 0 when numba's disk cache had the sampler already).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import QUICK, size

from pyvi import hmc
from pyvi.models import LogisticRegression, user_banana_target
from pyvi.targets import Banana

BANANA = Banana.default()
ITERATIONS = size(20_000, 200)
L = 30


USER_BANANA = user_banana_target(BANANA)  # the same density as a user's @njit function


def _banana_run(target, backend: str):
    return hmc.sample(target, [1.0, 0.5], num_samples=ITERATIONS // 2, num_warmup=ITERATIONS // 2, step_size=0.05,
                      num_steps=L, adapt_step_size=False, seed=2022, backend=backend, num_threads=1,
                      warn=False)  # the sampler is timed, not the run checks (pyvi.hmc.checks)


def _ns_per_step(benchmark, steps: int) -> dict:
    if benchmark.stats is None:  # timing disabled
        return {}
    return {"ns_per_step": round(benchmark.stats.stats.median / steps * 1e9, 2)}


@pytest.mark.parametrize("backend", ["numba", "cpp"])
@pytest.mark.parametrize("impl", ["built-in", "NumbaTarget"])
def test_banana_built_in_vs_numba_target(benchmark, backend, impl):
    benchmark.group = f"hmc: banana on {backend}, built-in vs NumbaTarget, 1 chain x {ITERATIONS:,} iterations x L={L}"
    target = BANANA if impl == "built-in" else USER_BANANA
    compile_seconds = USER_BANANA.compile(backend)[backend] if impl == "NumbaTarget" else None
    reference = _banana_run(BANANA, "cpp")
    np.testing.assert_array_equal(_banana_run(target, backend).samples, reference.samples)  # also compiles
    benchmark.pedantic(_banana_run, args=(target, backend), rounds=5, iterations=1)
    steps = ITERATIONS * L
    extra = {} if compile_seconds is None else {"compile_s": round(compile_seconds, 2)}
    benchmark.extra_info.update(impl=f"{impl} on {backend}, 1 thread", baseline=impl == "built-in", threads=1,
                                leapfrog_steps=steps, **_ns_per_step(benchmark, steps), **extra)


# -- the peer on logistic regression ----------------------------------------------------------------

MODEL = LogisticRegression.breast_cancer()
LR_STEP, LR_L = 0.05, 10
LR_ITERATIONS = size(2_000, 20)  # as in bench/bench_hmc_torch.py


def _numpyro_logistic():
    """NumPyro's HMC on the model's log joint, the same settings; returns a runner (the first run compiles)."""
    if QUICK:
        pytest.skip("the NumPyro row runs at full size only (its XLA compile takes seconds)")
    jax = pytest.importorskip("jax")
    pytest.importorskip("numpyro")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from numpyro.infer import HMC, MCMC

    design, labels, precision = jnp.asarray(MODEL.X), jnp.asarray(MODEL.y), MODEL.prior_precision

    def potential(beta):
        eta = design @ beta
        log_lik = jnp.sum(labels * eta - jnp.logaddexp(0.0, eta))
        return -(log_lik - 0.5 * precision * jnp.sum(beta * beta))

    kernel = HMC(potential_fn=potential, step_size=LR_STEP, num_steps=LR_L, trajectory_length=None, adapt_step_size=False,
                 adapt_mass_matrix=False)
    mcmc = MCMC(kernel, num_warmup=LR_ITERATIONS // 2, num_samples=LR_ITERATIONS // 2, num_chains=1,
                progress_bar=False)
    initial = jnp.zeros(MODEL.dim)

    def run():
        mcmc.run(jax.random.PRNGKey(7), init_params=initial)
        samples = mcmc.get_samples()
        samples.block_until_ready()
        return np.asarray(samples)

    return run


def test_logistic_regression_numpyro(benchmark):
    benchmark.group = f"hmc: logistic regression (breast cancer, 31-D), 1 chain x {LR_ITERATIONS:,} iterations x L={LR_L}"
    run = _numpyro_logistic()
    samples = run()  # compiles; correctness before timing: the posterior mean of pyvi's model
    assert samples.shape == (LR_ITERATIONS // 2, MODEL.dim) and np.all(np.isfinite(samples))
    reference = hmc.sample(MODEL.as_numba_target(), np.zeros(MODEL.dim), num_samples=LR_ITERATIONS // 2,
                           num_warmup=LR_ITERATIONS // 2, step_size=LR_STEP, num_steps=LR_L, adapt_step_size=False,
                           seed=7, backend="cpp", num_threads=1, warn=False).flat_samples()
    scale = reference.std(axis=0)
    assert np.all(np.abs(samples.mean(axis=0) - reference.mean(axis=0)) < scale)  # loose: two short chains
    benchmark.pedantic(run, rounds=3, iterations=1)
    steps = LR_ITERATIONS * LR_L
    benchmark.extra_info.update(impl="numpyro (jax, CPU), 1 chain", baseline=False, threads=1, leapfrog_steps=steps,
                                **_ns_per_step(benchmark, steps))
