"""NUTS in numpy: the readable reference, recursive as Stan writes it.

The metric (identity, diagonal, dense), one NUTS transition (multinomial sampling, the
generalised no-U-turn criterion with the checks across merged subtrees), Stan's step-size search,
the windowed warm-up and the driver. The native backends build the same tree iteratively
(csrc/core/hmc/nuts.hpp); given the same random numbers (``rng`` below) this module makes the same
choices, which a test checks. By default it draws from numpy's generator (``SeedSequence(seed)``,
one stream per chain), so its draws follow the same distribution as the native ones without
being equal to them.

References:
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), arXiv:1111.4246.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), Appendix A,
    arXiv:1701.02434.
    Stan, src/stan/mcmc/hmc/nuts/base_nuts.hpp, base_hmc.hpp (init_stepsize),
    windowed_adaptation.hpp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pyvi.hmc.reference import DualAveraging

__all__ = ["NumpyStream", "Metric", "NutsInfo", "Point", "nuts_transition", "static_transition", "find_initial_step", "WindowSchedule",
           "MetricEstimator", "sample_chain"]


class NumpyStream:
    """A chain's random numbers, as the samplers ask for them: ``uniform()`` and ``normals(d)``."""

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def uniform(self) -> float:
        return float(self.generator.random())

    def normals(self, d: int) -> np.ndarray:
        return self.generator.standard_normal(d)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """a . b as products then a sum: BLAS's dot may fuse multiply-adds, which the native backends
    never do (a test compares them)."""
    return float(np.sum(a * b))


def cholesky(a: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of a, column by column (the native backends' order of operations)."""
    d = a.shape[0]
    lower = np.zeros_like(a)
    for j in range(d):
        for i in range(j, d):
            s = a[i, j] - _dot(lower[i, :j], lower[j, :j]) if j else a[i, j]
            lower[i, j] = math.sqrt(s) if i == j else s / lower[j, j]
    return lower


@dataclass
class Metric:
    """M^-1 (``inv_mass``: None for the identity, a vector for a diagonal, a matrix for a dense
    metric): p ~ N(0, M), K(p) = p^T M^-1 p / 2, velocity M^-1 p."""

    inv_mass: np.ndarray | None = None
    chol: np.ndarray | None = field(default=None, repr=False)  # L with M^-1 = L L^T (dense)

    def set(self, inv_mass: np.ndarray) -> None:
        self.inv_mass = inv_mass
        self.chol = cholesky(inv_mass) if inv_mass.ndim == 2 else None

    def sample_momentum(self, rng, d: int) -> np.ndarray:
        z = rng.normals(d)
        if self.inv_mass is None:
            return z
        if self.inv_mass.ndim == 1:
            return z / np.sqrt(self.inv_mass)
        p = z.copy()  # p = L^-T z has covariance (L L^T)^-1 = M: back substitution
        for i in range(d - 1, -1, -1):
            p[i] = (p[i] - _dot(self.chol[i + 1:, i], p[i + 1:]) if i + 1 < d else p[i]) / self.chol[i, i]
        return p

    def velocity(self, p: np.ndarray) -> np.ndarray:
        if self.inv_mass is None:
            return p
        return self.inv_mass * p if self.inv_mass.ndim == 1 else (self.inv_mass * p).sum(axis=1)

    def kinetic_energy(self, p: np.ndarray) -> float:
        return 0.5 * _dot(p, self.velocity(p))


@dataclass
class Point:
    """A point of phase space: position, momentum, log p and its gradient."""

    x: np.ndarray
    p: np.ndarray
    log_prob: float
    grad: np.ndarray

    def copy(self) -> Point:
        return Point(self.x.copy(), self.p.copy(), self.log_prob, self.grad.copy())


@dataclass
class NutsInfo:
    accept_prob: float
    energy: float  # H at the selected point
    energy_error: float  # H(selected) - H(start)
    divergent: bool
    num_steps: int
    tree_depth: int


def _log_sum_exp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


def _hamiltonian(z: Point, metric: Metric) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        h = -z.log_prob + metric.kinetic_energy(z.p)
    return h if math.isfinite(h) else math.inf  # NaN, or log p = +inf: the extreme of divergence


def _leapfrog_step(target, metric: Metric, z: Point, eps: float) -> None:
    """One kick-drift-kick step of signed size eps, in place; a position that overflows gets
    log p = -inf (the target never sees inf or NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        z.p = z.p + 0.5 * eps * z.grad
        z.x = z.x + eps * metric.velocity(z.p)
        if not np.isfinite(z.x).all():
            z.log_prob = -math.inf
            return
        z.log_prob, z.grad = target.log_prob_and_grad(z.x)
        z.p = z.p + 0.5 * eps * z.grad


def _criterion(v_minus, v_plus, rho) -> bool:
    return _dot(v_plus, rho) > 0.0 and _dot(v_minus, rho) > 0.0


class _Tree:
    """The state of one transition that Stan keeps in its sampler object."""

    def __init__(self, target, metric, rng, z, h0, max_energy_error):
        self.target, self.metric, self.rng, self.z = target, metric, rng, z
        self.h0, self.max_energy_error = h0, max_energy_error
        self.num_steps, self.sum_accept, self.divergent = 0, 0.0, False

    def build(self, depth: int, eps: float):
        """Stan's build_tree: returns (valid, proposal, log weight, rho, p_begin, v_begin, p_end, v_end)."""
        if depth == 0:
            _leapfrog_step(self.target, self.metric, self.z, eps)
            self.num_steps += 1
            h = _hamiltonian(self.z, self.metric)
            if h - self.h0 > self.max_energy_error:
                self.divergent = True
            self.sum_accept += 1.0 if self.h0 - h > 0 else math.exp(self.h0 - h)
            v = self.metric.velocity(self.z.p)
            return (not self.divergent, (self.z.copy(), h), self.h0 - h, self.z.p.copy(), self.z.p.copy(), v,
                    self.z.p.copy(), v)
        valid, propose, w_init, rho_init, p_beg, v_beg, p_init_end, v_init_end = self.build(depth - 1, eps)
        if not valid:
            return (False,) + (None,) * 7
        valid, propose_final, w_final, rho_final, p_final_beg, v_final_beg, p_end, v_end = self.build(depth - 1, eps)
        if not valid:
            return (False,) + (None,) * 7
        w_subtree = _log_sum_exp(w_init, w_final)
        if w_final > w_subtree or self.rng.uniform() < math.exp(w_final - w_subtree):
            propose = propose_final
        rho = rho_init + rho_final
        persist = _criterion(v_beg, v_end, rho)
        persist = _criterion(v_beg, v_final_beg, rho_init + p_final_beg) and persist
        persist = _criterion(v_init_end, v_end, rho_final + p_init_end) and persist
        return persist, propose, w_subtree, rho, p_beg, v_beg, p_end, v_end


def nuts_transition(rng, target, metric: Metric, x: np.ndarray, log_prob: float, grad: np.ndarray,
                    step_size: float, max_tree_depth: int, max_energy_error: float):
    """One NUTS transition from (x, log p, grad): returns ``(x, log_prob, grad, NutsInfo)``."""
    p = metric.sample_momentum(rng, x.shape[0])
    start = Point(x.copy(), p, log_prob, grad.copy())
    ends = {1: start.copy(), -1: start.copy()}
    sample = (start, None)
    h0 = _hamiltonian(start, metric)
    h_sample = h0
    v = metric.velocity(p)
    p_ends = {"bb": p, "bf": p, "fb": p, "ff": p}
    v_ends = {"bb": v, "bf": v, "fb": v, "ff": v}
    rho = p.copy()
    log_sum_weight = 0.0
    tree = _Tree(target, metric, rng, None, h0, max_energy_error)  # steps, acceptance, divergence tallies
    depth = 0
    while depth < max_tree_depth:
        forward = rng.uniform() > 0.5
        direction = 1 if forward else -1
        if forward:
            rho_bck, p_ends["bf"], v_ends["bf"] = rho, p_ends["ff"], v_ends["ff"]
        else:
            rho_fwd, p_ends["fb"], v_ends["fb"] = rho, p_ends["bb"], v_ends["bb"]
        tree.z = ends[direction]  # extend the trajectory from this end
        valid, propose, w_subtree, rho_sub, p_beg, v_beg, p_end, v_end = tree.build(depth, direction * step_size)
        if not valid:
            break
        side = "f" if forward else "b"
        p_ends[side + ("b" if forward else "f")], v_ends[side + ("b" if forward else "f")] = p_beg, v_beg
        p_ends[side + side], v_ends[side + side] = p_end, v_end
        if forward:
            rho_fwd = rho_sub
        else:
            rho_bck = rho_sub
        depth += 1
        if w_subtree > log_sum_weight or rng.uniform() < math.exp(w_subtree - log_sum_weight):
            sample = propose
        log_sum_weight = _log_sum_exp(log_sum_weight, w_subtree)
        rho = rho_bck + rho_fwd
        persist = _criterion(v_ends["bb"], v_ends["ff"], rho)
        persist = _criterion(v_ends["bb"], v_ends["fb"], rho_bck + p_ends["fb"]) and persist
        persist = _criterion(v_ends["bf"], v_ends["ff"], rho_fwd + p_ends["bf"]) and persist
        if not persist:
            break
    z, h = sample
    if h is not None:
        h_sample = h
    info = NutsInfo(tree.sum_accept / tree.num_steps, h_sample, h_sample - h0, tree.divergent, tree.num_steps, depth)
    return z.x, z.log_prob, z.grad, info


def static_transition(rng, target, metric: Metric, x: np.ndarray, log_prob: float, grad: np.ndarray,
                      step_size: float, num_steps: int, random_steps: bool, max_energy_error: float):
    """One static-HMC transition with ``metric`` (random numbers in the order of the native kernels:
    path length, momentum, accept uniform): returns ``(x, log_prob, grad, NutsInfo)``."""
    length = 1 + int(rng.uniform() * num_steps) if random_steps else num_steps
    z = Point(x.copy(), metric.sample_momentum(rng, x.shape[0]), log_prob, grad.copy())
    h0 = _hamiltonian(z, metric)
    for _ in range(length):
        _leapfrog_step(target, metric, z, step_size)
    h = _hamiltonian(z, metric)
    energy_error = h - h0
    accept_prob = 1.0 if energy_error <= 0.0 else math.exp(-energy_error)
    accepted = rng.uniform() < accept_prob
    info = NutsInfo(accept_prob, h if accepted else h0, energy_error, energy_error > max_energy_error, length, 0)
    return (z.x, z.log_prob, z.grad, info) if accepted else (x, log_prob, grad, info)


def find_initial_step(rng, target, metric: Metric, x, log_prob, grad, step_size: float) -> float:
    """Stan's init_stepsize (csrc/core/hmc/nuts_driver.hpp): double or halve the step size until one
    leapfrog step's acceptance crosses 0.8; stops at 1e7 and at the smallest positive double."""
    if not 0.0 < step_size <= 1e7:
        return step_size
    log_08 = math.log(0.8)

    def delta_h(eps):
        z = Point(x.copy(), metric.sample_momentum(rng, x.shape[0]), log_prob, grad.copy())
        h0 = _hamiltonian(z, metric)
        _leapfrog_step(target, metric, z, eps)
        return h0 - _hamiltonian(z, metric)

    direction = 1 if delta_h(step_size) > log_08 else -1
    while True:
        dh = delta_h(step_size)
        if (direction == 1 and not dh > log_08) or (direction == -1 and not dh < log_08):
            break
        following = 2.0 * step_size if direction == 1 else 0.5 * step_size
        if not 0.0 < following <= 1e7:
            break
        step_size = following
    return step_size


class WindowSchedule:
    """Stan's windowed warm-up schedule (csrc/core/hmc/windowed_adaptation.hpp)."""

    def __init__(self, num_warmup: int, init_buffer: int, term_buffer: int, base_window: int, enabled: bool):
        self.num_warmup = self.init_buffer = self.term_buffer = self.base_window = 0
        self.counter = self.window_size = self.next_window = 0
        if not enabled or num_warmup < 20:
            return
        if init_buffer + base_window + term_buffer > num_warmup:
            init_buffer = int(0.15 * num_warmup)
            term_buffer = int(0.1 * num_warmup)
            base_window = num_warmup - (init_buffer + term_buffer)
        self.num_warmup, self.init_buffer, self.term_buffer = num_warmup, init_buffer, term_buffer
        self.base_window = self.window_size = base_window
        self.next_window = init_buffer + base_window - 1

    def in_window(self) -> bool:
        return (self.init_buffer <= self.counter < self.num_warmup - self.term_buffer
                and self.counter != self.num_warmup)

    def end_of_window(self) -> bool:
        return self.counter == self.next_window and self.counter != self.num_warmup

    def compute_next_window(self) -> None:
        last = self.num_warmup - self.term_buffer - 1
        if self.next_window == last:
            return
        self.window_size *= 2
        self.next_window = self.counter + self.window_size
        if self.next_window != last and self.next_window + 2 * self.window_size >= self.num_warmup - self.term_buffer:
            self.next_window = last

    def windows(self) -> list[tuple[int, int]]:
        """The slow windows as (first, last) iterations (for the docs and tests)."""
        copy = WindowSchedule.__new__(WindowSchedule)
        copy.__dict__.update(self.__dict__)
        out, start = [], None
        for it in range(self.num_warmup):
            copy.counter = it
            if copy.in_window() and start is None:
                start = it
            if copy.end_of_window():
                out.append((start, it))
                start = None
                copy.compute_next_window()
        return out


class MetricEstimator:
    """Welford's mean and (co)variance of a window's draws; :meth:`finish` regularises as Stan."""

    def __init__(self, dim: int, dense: bool):
        self.dense = dense
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros((dim, dim) if dense else dim)

    def add(self, x: np.ndarray) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + (np.outer(x - self.mean, delta) if self.dense else (x - self.mean) * delta)

    def finish(self) -> np.ndarray:
        n = float(self.n)
        estimate = (n / (n + 5.0)) * (self.m2 / (n - 1.0))
        ridge = 1e-3 * (5.0 / (n + 5.0))
        if self.dense:
            lower = np.tril(estimate)
            return lower + np.tril(lower, -1).T + ridge * np.eye(len(self.mean))
        return estimate + ridge


def sample_chain(rng, target, x, settings: dict, max_energy_error: float, buffers: tuple[int, int, int],
                 chain: int = 0):
    """One chain: warm-up (step-size search and dual averaging, the metric in Stan's windows) then
    sampling. ``settings``: num_samples, num_warmup, thin, save_warmup, step_size, max_tree_depth,
    metric, adapt_step_size, adapt_metric, target_accept, and (static HMC instead of NUTS) kernel
    "hmc", num_steps, random_steps. Returns (rows of (x, log_prob, info),
    the final step size, the metric's M^-1). An exception of the target's log density gets a note
    naming the chain (``chain``: its number in the run) and the transition."""
    progress = [0]  # the transition reached
    try:
        return _sample_chain(rng, target, x, settings, max_energy_error, buffers, progress)
    except Exception as error:
        it = progress[0]
        phase = "warm-up" if it < settings["num_warmup"] else "sampling"
        error.add_note(f"(raised by the target's log density in chain {chain}, transition {it} ({phase}), "
                       "backend 'numpy')")
        raise


def _sample_chain(rng, target, x, s: dict, max_energy_error: float, buffers: tuple[int, int, int],
                  progress: list[int]):
    """sample_chain's loop; ``progress[0]``: the transition it is in."""
    d = x.shape[0]
    log_prob, grad = target.log_prob_and_grad(x)
    metric = Metric()
    if s["metric"] == "diag":
        metric.set(np.ones(d))
    elif s["metric"] == "dense":
        metric.set(np.eye(d))
    schedule = WindowSchedule(s["num_warmup"], *buffers, enabled=s["adapt_metric"] and s["metric"] != "identity")
    estimator = MetricEstimator(d, s["metric"] == "dense")
    step_size = s["step_size"]
    if s["adapt_step_size"] and s["num_warmup"] > 0:
        step_size = find_initial_step(rng, target, metric, x, log_prob, grad, step_size)
    adaptation = DualAveraging(step_size, s["target_accept"])
    rows = []
    for it in range(s["num_warmup"] + s["num_samples"]):
        progress[0] = it
        if s.get("kernel", "nuts") == "hmc":
            x, log_prob, grad, info = static_transition(rng, target, metric, x, log_prob, grad, step_size,
                                                        s["num_steps"], s["random_steps"], max_energy_error)
        else:
            x, log_prob, grad, info = nuts_transition(rng, target, metric, x, log_prob, grad, step_size,
                                                      s["max_tree_depth"], max_energy_error)
        if it < s["num_warmup"]:
            if s["save_warmup"] and it % s["thin"] == 0:
                rows.append((x, log_prob, info))
            if s["adapt_step_size"]:
                step_size = adaptation.update(info)
            if schedule.num_warmup > 0:
                if schedule.in_window():
                    estimator.add(x)
                if schedule.end_of_window():
                    schedule.compute_next_window()
                    metric.set(estimator.finish())
                    estimator = MetricEstimator(d, s["metric"] == "dense")
                    if s["adapt_step_size"]:
                        step_size = find_initial_step(rng, target, metric, x, log_prob, grad, step_size)
                        adaptation = DualAveraging(step_size, s["target_accept"])
                schedule.counter += 1
            if s["adapt_step_size"] and it + 1 == s["num_warmup"]:
                step_size = adaptation.final_step()
            continue
        if (it - s["num_warmup"]) % s["thin"] == 0:
            rows.append((x, log_prob, info))
    inv_mass = np.ones(d) if metric.inv_mass is None else metric.inv_mass
    return rows, step_size, inv_mass
