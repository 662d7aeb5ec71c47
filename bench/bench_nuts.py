"""NUTS against NumPyro: 4 chains x (1,000 warm-up + 1,000 draws), diagonal metric adapted in
Stan's windows, target acceptance 0.8, max tree depth 10, chains one after the other on one thread
(NumPyro's ``chain_method="sequential"``; its "vectorized" chains are shown too), on the homework banana, the
non-centred funnel (10-D), eight schools (non-centred, 10-D, the classic data) and the logistic
regression of issue #11 (breast cancer, 31-D, pyvi.models.LogisticRegression).

Reported per sampler: wall time of a warm run (compilation excluded: Numba's is cached, NumPyro's
jit is paid by a first run), the minimum bulk ESS over the dimensions (pyvi.diagnostics), ESS/s,
and gradient evaluations (leapfrog steps while sampling) per effective sample. Targets (issue #12):
ESS/s >= 100x NumPyro's on the banana, >= 20x on the funnel and eight schools, >= 5x on the
logistic regression, ESS per gradient within 25% of NumPyro's.

``python bench/bench_nuts.py`` prints the table (the README's numbers); under pytest each row is one
benchmark (``PYVI_BENCH_QUICK=1``: 100 + 100 iterations, untimed). Rows without NumPyro and jax skip.
Eight schools and the logistic regression are user targets (:class:`pyvi.targets.NumbaTarget`): the
numba backend compiles their function into its sampler, the cpp backend calls it through its cfunc.
NumPyro runs the same models (the same priors and parameterisation: eight schools' log tau is
NumPyro's unconstrained tau) with the same settings: NUTS's step size adapted from 1.0, no
trajectory_length (NUTS ignores it; NumPyro's HMC would rescale its step size by it).
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

import numba
import numpy as np
import pytest
from conftest import size

from pyvi import diagnostics, hmc
from pyvi.models import LogisticRegression
from pyvi.targets import Banana, Gaussian, NumbaTarget

NUM_CHAINS = 4
NUM_WARMUP = size(1000, 100)
NUM_SAMPLES = size(1000, 100)

# Eight schools (Rubin 1981; Gelman et al., BDA3 Sec. 5.5): effects and standard errors.
SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def homework_banana() -> Banana:
    path = os.environ.get("PYVI_BANANA_DATA")
    return Banana.from_file(path) if path and os.path.exists(path) else Banana.default()


def funnel() -> Gaussian:
    """Neal's funnel, non-centred: v ~ N(0, 3^2), z_1..9 ~ N(0, 1) independent (x_i = e^(v/2) z_i)."""
    return Gaussian(np.zeros(10), np.diag([9.0] + [1.0] * 9))


@numba.njit(cache=True)
def eight_schools_log_joint(x, grad, y, sigma):
    """(mu, log tau, theta_tilde_1..8): mu ~ N(0, 5^2), tau ~ HalfCauchy(5) (with its log-Jacobian),
    theta_tilde ~ N(0, 1), y_j ~ N(mu + tau theta_tilde_j, sigma_j^2); up to a constant. A
    :class:`~pyvi.targets.NumbaTarget` function: ``fn(x, grad, *data)``."""
    mu, log_tau = x[0], x[1]
    tau = np.exp(log_tau)
    t2 = tau * tau / 25.0
    log_prob = -mu * mu / 50.0 - np.log1p(t2) + log_tau
    grad[0] = -mu / 25.0
    grad[1] = 1.0 - 2.0 * t2 / (1.0 + t2)
    for j in range(y.shape[0]):
        tt = x[2 + j]
        r = (y[j] - mu - tau * tt) / sigma[j]
        log_prob -= 0.5 * (tt * tt + r * r)
        r = r / sigma[j]
        grad[0] += r
        grad[1] += r * tt * tau
        grad[2 + j] = -tt + r * tau
    return log_prob


def eight_schools() -> NumbaTarget:
    return NumbaTarget(eight_schools_log_joint, 10, data=(SCHOOLS_Y, SCHOOLS_SIGMA))


def logistic_regression() -> NumbaTarget:
    """The breast-cancer model (31 coefficients, N(0, 1) priors) as the user writes it."""
    return LogisticRegression.breast_cancer().as_numba_target()


CASES = {"banana": (homework_banana, np.array([1.0, 0.0])), "funnel": (funnel, np.zeros(10)),
         "eight_schools": (eight_schools, np.zeros(10)), "logistic_regression": (logistic_regression, np.zeros(31))}


class Row(NamedTuple):
    seconds: float
    min_ess: float
    grads: int  # leapfrog steps while sampling

    @property
    def ess_per_second(self) -> float:
        return self.min_ess / self.seconds

    @property
    def grads_per_ess(self) -> float:
        return self.grads / self.min_ess


def run_pyvi(case: str, backend: str, seed: int = 1) -> Row:
    make, initial = CASES[case]
    target = make()

    def once():
        return hmc.nuts(target, initial, NUM_SAMPLES, NUM_WARMUP, num_chains=NUM_CHAINS, metric="diag", seed=seed,
                        backend=backend, num_threads=1, warn=False, progress=False)

    once()  # compile (Numba, cached on disk) outside the timing
    start = time.perf_counter()
    result = once()
    seconds = time.perf_counter() - start
    return Row(seconds, float(diagnostics.ess_bulk(result.samples).min()), int(result.num_steps.sum()))


def _numpyro_model(case: str):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    if case == "banana":
        num_data, mean_y, lik, prior, _ = homework_banana().numba_target()

        def potential(theta):
            residual = theta[0] + theta[1] ** 2 - mean_y
            return 0.5 * num_data * lik * residual**2 + 0.5 * prior * (theta @ theta)

        return dict(potential_fn=potential), jnp.tile(jnp.array([1.0, 0.0]), (NUM_CHAINS, 1)), lambda s: s

    if case == "funnel":
        def model():
            numpyro.sample("v", dist.Normal(0.0, 3.0))
            numpyro.sample("z", dist.Normal(0.0, 1.0).expand([9]))

        return dict(model=model), None, lambda s: np.concatenate([s["v"][..., None], s["z"]], axis=-1)

    if case == "logistic_regression":
        model_data = LogisticRegression.breast_cancer()
        X, y = jnp.asarray(model_data.X), jnp.asarray(model_data.y)

        def model():
            beta = numpyro.sample("beta", dist.Normal(0.0, model_data.prior_scale).expand([model_data.dim]))
            numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

        # pyvi's start: every coefficient 0.
        return dict(model=model), {"beta": jnp.zeros((NUM_CHAINS, model_data.dim))}, lambda s: s["beta"]

    def model():
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("J", 8):
            theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
            numpyro.sample("obs", dist.Normal(mu + tau * theta_tilde, SCHOOLS_SIGMA), obs=SCHOOLS_Y)

    return dict(model=model), None, lambda s: np.concatenate(
        [s["mu"][..., None], np.log(s["tau"])[..., None], s["theta_tilde"]], axis=-1)


def run_numpyro(case: str, seed: int = 1, chain_method: str = "sequential") -> Row:
    jax = pytest.importorskip("jax")
    numpyro = pytest.importorskip("numpyro")
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    kernel_args, init, to_array = _numpyro_model(case)
    kernel = NUTS(**kernel_args, target_accept_prob=0.8, dense_mass=False, max_tree_depth=10)
    mcmc = MCMC(kernel, num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method=chain_method, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), init_params=init, extra_fields=("num_steps",))  # jit
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed + 1), init_params=init, extra_fields=("num_steps",))
    samples = jax.tree_util.tree_map(np.asarray, mcmc.get_samples(group_by_chain=True))
    seconds = time.perf_counter() - start
    draws = to_array(samples)
    steps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
    del numpyro
    return Row(seconds, float(diagnostics.ess_bulk(draws).min()), steps)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["cpp", "numba", "numpyro"])
def test_nuts(benchmark, case, impl):
    benchmark.group = f"nuts: {case}, {NUM_CHAINS} chains x ({NUM_WARMUP} + {NUM_SAMPLES})"
    row = run_numpyro(case) if impl == "numpyro" else run_pyvi(case, impl)
    assert row.min_ess > 0
    benchmark.extra_info.update(row._asdict(), ess_per_second=row.ess_per_second, grads_per_ess=row.grads_per_ess)
    benchmark.pedantic(lambda: None, rounds=1)


def main() -> None:
    print(f"load average: {os.getloadavg()}")
    print("| target | sampler | wall (s) | min bulk ESS | ESS/s | grads/ESS | ESS/s vs NumPyro | grads/ESS vs NumPyro |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        try:
            peer = run_numpyro(case)
        except pytest.skip.Exception:
            peer = None
        rows = {"numpyro": peer}
        if peer is not None:  # NumPyro's chains batched in one XLA program: not one thread's work, but its best time
            rows["numpyro vectorized"] = run_numpyro(case, chain_method="vectorized")
        for backend in ("cpp", "numba"):
            rows[f"pyvi {backend}"] = run_pyvi(case, backend)
        for name, row in rows.items():
            if row is None:
                continue
            ratio = f"{row.ess_per_second / peer.ess_per_second:.0f}x" if peer else "-"
            grads = f"{row.grads_per_ess / peer.grads_per_ess:.2f}" if peer else "-"
            print(f"| {case} | {name} | {row.seconds:.3f} | {row.min_ess:.0f} | {row.ess_per_second:.0f} | "
                  f"{row.grads_per_ess:.1f} | {ratio} | {grads} |")


if __name__ == "__main__":
    main()
