"""Type stub of pyvi._core, the torch-free C++ core (pybind11). Validation errors are ValueError."""

from typing import Protocol, TypedDict, overload

import numpy as np
import numpy.typing as npt

openmp: bool

class NativeTarget(Protocol):
    """Any target class below (csrc/core/targets/registry.hpp lists them)."""

    @property
    def dim(self) -> int: ...

class BananaTarget:
    """The banana posterior from its sufficient statistics: n, mean(y), sum((y - mean(y))^2)."""

    def __init__(self, num_data: float, mean_y: float, ss_y: float, sigma_y: float, sigma_theta: float) -> None: ...
    @property
    def num_data(self) -> float: ...
    @property
    def mean_y(self) -> float: ...
    @property
    def dim(self) -> int: ...

def banana_params(num_data: float, mean_y: float, ss_y: float, sigma_y: float, sigma_theta: float) -> dict[str, float]:
    """BananaParams (csrc/common/banana.h): num_data, mean_y, lik_precision, prior_precision, log_norm."""

class GaussianTarget:
    """N(mean, precision^-1) with the given log normaliser; precision must be symmetric positive definite."""

    def __init__(self, mean: npt.ArrayLike, precision: npt.ArrayLike, log_norm: float) -> None: ...
    @property
    def log_norm(self) -> float: ...
    @property
    def dim(self) -> int: ...

class FunnelTarget:
    """Neal's funnel over (v, x) (centred) or its standard-normal reparameterisation (csrc/core/targets/funnel.hpp)."""

    def __init__(self, dim: int, v_scale: float, centred: bool, log_norm: float) -> None: ...
    @property
    def centred(self) -> bool: ...
    @property
    def dim(self) -> int: ...

class GaussianMixtureTarget:
    """sum_k exp(log_coef_k - 1/2 (x - mean_k)^T precision_k (x - mean_k)), at most 64 components."""

    def __init__(self, log_coef: npt.ArrayLike, means: npt.ArrayLike, precisions: npt.ArrayLike) -> None: ...
    @property
    def num_components(self) -> int: ...
    @property
    def dim(self) -> int: ...

class HybridRosenbrockTarget:
    """The hybrid Rosenbrock density, b of shape (n2, n1 - 1) (csrc/core/targets/hybrid_rosenbrock.hpp)."""

    def __init__(self, mu: float, a: float, b: npt.ArrayLike, log_norm: float) -> None: ...
    @property
    def dim(self) -> int: ...

@overload
def log_prob_and_grad(target: NativeTarget, x: npt.ArrayLike, num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def log_prob_and_grad(target: NativeTarget, x: npt.ArrayLike, num_threads: int = 1) -> tuple[float, np.ndarray]: ...
def leapfrog(target: NativeTarget, position: npt.ArrayLike, momentum: npt.ArrayLike, step_size: float,
             num_steps: int) -> tuple[np.ndarray, np.ndarray, float]: ...
def hmc(target: NativeTarget, initial: npt.ArrayLike, num_samples: int, num_warmup: int, step_size: float,
        num_steps: int, random_steps: bool, adapt_step_size: bool, target_accept: float, max_energy_error: float,
        seed: int, num_threads: int, first_chain: int = 0) -> dict[str, np.ndarray]:
    """Chain c uses random stream (seed, first_chain + c). Keys: hmc_outputs (samples (C, S, d), log_prob, accept_prob, divergent, num_steps (C, S), step_size (C,))."""

#: The names of hmc's outputs, in order.
hmc_outputs: tuple[str, ...]
#: gamma, kappa, t0 (Stan's dual averaging), max_log_step, max_energy_error (the divergence threshold).
hmc_constants: dict[str, float]

def hmc_draws(num_chains: int, num_samples: int, dim: int,
              out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Uninitialised outputs of hmc, keyed by hmc_outputs (for the Numba and numpy samplers to fill);
    with ``out``, its arrays, checked (each output present, its dtype and shape, C-ordered, writeable,
    no two overlapping; never converted: TypeError / ValueError)."""

class NutsRun:
    """A NUTS run, advanced in chunks of iterations (every chain's state kept between them)."""

    def advance(self, iterations: int, num_threads: int) -> None:
        """Runs the next ``iterations`` iterations of every chain (at most what is left), without the GIL."""
    @property
    def iteration(self) -> int: ...
    @property
    def num_iterations(self) -> int: ...
    @property
    def outputs(self) -> dict[str, np.ndarray]: ...

def nuts_start(target: NativeTarget, initial: npt.ArrayLike, num_samples: int, num_warmup: int, thin: int,
               save_warmup: bool, step_size: float, max_tree_depth: int, metric: str, adapt_step_size: bool,
               adapt_metric: bool, target_accept: float, max_energy_error: float, seed: int, kernel: str = "nuts",
               num_steps: int = 1, random_steps: bool = False) -> NutsRun:
    """A NUTS run (kernel="hmc": static HMC with num_steps) from initial (num_chains, dim), starts checked."""

def nuts(target: NativeTarget, initial: npt.ArrayLike, num_samples: int, num_warmup: int, thin: int,
         save_warmup: bool, step_size: float, max_tree_depth: int, metric: str, adapt_step_size: bool,
         adapt_metric: bool, target_accept: float, max_energy_error: float, seed: int,
         num_threads: int, kernel: str = "nuts", num_steps: int = 1, random_steps: bool = False) -> dict[str, np.ndarray]:
    """nuts_start, then every iteration. Keys: nuts_outputs (samples (C, R, d), log_prob, accept_prob, divergent, num_steps, tree_depth, energy,
    energy_error (C, R), step_size (C,), inv_metric (C, d) or (C, d, d)); R: the warm-up rows (when
    save_warmup) then the sampling rows, each ceil(n / thin)."""

#: The names of nuts's outputs, in order.
nuts_outputs: tuple[str, ...]
#: init_buffer, term_buffer, base_window (Stan's windows: 75, 50, 25), max_tree_depth (the largest allowed).
nuts_constants: dict[str, int]

def nuts_draws(num_chains: int, rows: int, dim: int, dense: bool) -> dict[str, np.ndarray]:
    """Uninitialised outputs of nuts, keyed by nuts_outputs (for the Numba and numpy samplers to fill)."""

def random_uint64(seed: int, stream: int, n: int) -> np.ndarray: ...

#: The process barrier's block size in int32 words, and the most processes it serves.
barrier_words: int
barrier_max_processes: int

def barrier_arrive(block: npt.NDArray[np.int32], world_size: int, rank: int, generation: int) -> None:
    """Process ``rank`` arrives at barrier number ``generation`` (block: shared memory)."""

def barrier_wait(block: npt.NDArray[np.int32], world_size: int, rank: int, generation: int, spin_seconds: float,
                 slice_seconds: float) -> int:
    """Waits for every process at ``generation`` without the GIL: 0 open, 1 a peer aborted, 2 the
    slice passed."""

def barrier_abort(block: npt.NDArray[np.int32]) -> None:
    """Sets the abort word: every waiter returns 1."""
def random_normal(seed: int, stream: int, n: int) -> np.ndarray: ...

class KnnKLResult(TypedDict):
    value: float
    terms: npt.NDArray[np.float64]
    rho: npt.NDArray[np.float64]
    nu: npt.NDArray[np.float64]
    copies_x: npt.NDArray[np.int64]
    copies_y: npt.NDArray[np.int64]

def knn_kl(
    x: npt.ArrayLike, y: npt.ArrayLike, k: int = 1, num_threads: int = 1, leaf_size: int = 32
) -> KnnKLResult:
    """k-NN estimate of KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d) (Wang et al. 2009, eq. 5;
    copies of each x_i left out, as in pyvi.divergence). num_threads = 0 uses all cores."""
