"""``sample`` and ``leapfrog``: argument checks, then the backend that runs the target's face."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, choice, positive_float
from pyvi.distributed import agree, run_chains
from pyvi.hmc import nuts_run as nuts_runs
from pyvi.hmc import reference
from pyvi.hmc.checks import warn_about
from pyvi.hmc.progress import progress_callback
from pyvi.hmc.native import numba_leapfrog, reporting_exceptions, run_cpp, run_numba
from pyvi.hmc.result import HMCResult
from pyvi.hmc.settings import MAX_INT64, Settings, native_count, thread_count, torch_options
from pyvi.targets.base import as_target, native_face

__all__ = ["sample", "nuts", "leapfrog", "BACKENDS", "KERNELS"]

BACKENDS = ("cpp", "numba", "numpy", "torch")
KERNELS = ("hmc", "nuts")
_RUN = {"cpp": run_cpp, "numba": run_numba}
_RUN_NUTS = {"cpp": nuts_runs.run_cpp, "numba": nuts_runs.run_numba}


def _initial_positions(initial, num_chains: int, dim: int) -> np.ndarray:
    initial = as_float_array(initial, "initial", ndim=(1, 2))
    if initial.ndim == 1:
        if initial.shape != (dim,):
            raise ValueError(f"initial must have shape ({dim},) or (num_chains, {dim}), got {initial.shape}")
        initial = np.broadcast_to(initial, (num_chains, dim))
    elif initial.shape != (num_chains, dim):
        raise ValueError(f"initial must have shape ({dim},) or ({num_chains}, {dim}), got {initial.shape}")
    return np.ascontiguousarray(initial, dtype=np.float64)


def _jittered(initial: np.ndarray, init_jitter, seed: int) -> np.ndarray:
    """``initial`` + Uniform(-init_jitter, init_jitter) per coordinate (Stan's inits are this around
    0 with init_jitter 2), drawn from numpy's generator seeded with ``seed``: the same starts for
    every backend."""
    jitter = float(init_jitter) if not isinstance(init_jitter, bool) else init_jitter
    if not isinstance(jitter, float) or not (np.isfinite(jitter) and jitter >= 0.0):
        raise ValueError(f"init_jitter must be a finite number >= 0, got {init_jitter!r}")
    if jitter == 0.0:
        return initial
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1717]))
    return np.ascontiguousarray(initial + rng.uniform(-jitter, jitter, size=initial.shape))


def sample(
    target,
    initial,
    num_samples: int,
    num_warmup: int,
    step_size: float | None = None,
    num_steps: int | None = None,
    *,
    kernel: str = "hmc",
    metric: str | None = None,
    max_tree_depth: int = 10,
    adapt_metric: bool = True,
    save_warmup: bool = False,
    thin: int = 1,
    init_jitter: float = 0.0,
    random_steps: bool = False,
    num_chains: int = 1,
    adapt_step_size: bool = True,
    target_accept: float = 0.8,
    seed: int | None = 0,
    backend: str = "cpp",
    num_threads: int | None = None,
    progress: bool | str | Callable[[int, int], object] | None = "auto",
    warn: bool = True,
    device=None,
    dtype=None,
    cuda_graph: bool | None = None,
) -> HMCResult:
    """Draws from ``target`` with static HMC or NUTS (leapfrog integrator).

    By default the step size adapts during warm-up (``adapt_step_size=True``): ``step_size`` is
    then only where the adaptation starts, and ``result.step_size`` is the one the draws used (the
    result's repr and summary show both). Pass ``adapt_step_size=False`` to sample with
    ``step_size`` itself.

    The run goes in chunks of iterations (:mod:`pyvi.hmc.chunks`, about 0.2 s each; ``torch``:
    its transitions or CUDA graph replays): between chunks ``progress`` is called, and Ctrl-C
    stops the run with a KeyboardInterrupt (the draws so far are discarded).

    Args:
        target: a :class:`~pyvi.targets.Target` (or any object with ``dim`` and
            ``log_prob_and_grad(x) -> (float, (dim,) array)``). ``"numpy"`` runs any target;
            ``"cpp"`` and ``"numba"`` run the target's native face (:class:`~pyvi.targets.Banana`,
            :class:`~pyvi.targets.Gaussian`), ``"torch"`` its torch face (its fused log-joint op, or
            its torch log density through autograd: the built-in targets and
            :class:`~pyvi.targets.TorchTarget`); each raises a TypeError for a target without one.
        initial: start, ``(dim,)`` for every chain or ``(num_chains, dim)``; log p must be finite there.
        num_samples: draws kept per chain after warm-up, >= 1.
        num_warmup: warm-up (burn-in) transitions per chain; the step size adapts during them when
            ``adapt_step_size`` (and, with NUTS, the metric, in Stan's windows).
        step_size: leapfrog step size: the initial one when adapting (the default), else the one
            used throughout. Required for ``"hmc"``; NUTS defaults to 1.0 (Stan's), from which its
            warm-up starts with Stan's search for a step whose one-step acceptance crosses 0.8.
        num_steps: ``"hmc"`` only (required there): leapfrog steps per transition L (its maximum
            if ``random_steps``).
        kernel: ``"hmc"`` (static: a fixed or random path length) or ``"nuts"`` (the No-U-Turn
            sampler: multinomial sampling of the trajectory, the generalised no-U-turn criterion
            with Stan's checks across subtrees; Betancourt 2017).
        metric: ``"identity"``, ``"diag"`` or ``"dense"``: the mass matrix, its inverse estimated
            during warm-up when ``adapt_metric``. NUTS's default is ``"diag"``, static HMC's
            ``"identity"``; static HMC with another metric (or with ``save_warmup``, ``thin``,
            ``init_jitter``) runs on NUTS's per-chain driver and warm-up (Stan's step-size search
            and windows) and reports energies too.
        max_tree_depth: NUTS: at most 2**max_tree_depth leapfrog steps per draw (Stan's 10);
            draws cut there are counted in ``result.num_max_tree_depth``.
        adapt_metric: Stan's windowed warm-up: after an initial fast interval of 75
            iterations, slow windows of 25, 50, 100, ... iterations (the last one stretched)
            estimate M^-1 from the chain's draws, regularised toward the identity as
            (n / (n + 5)) var + 1e-3 (5 / (n + 5)), and restart the step size adaptation;
            a terminal fast interval of 50 iterations tunes the step size alone. A warm-up shorter
            than 150 iterations takes Stan's split (15% / 75% / 10%); shorter than 20 estimates no
            metric. Per chain.
        save_warmup: also return the warm-up draws and statistics (``result.warmup_*``).
        thin: keep every thin-th draw (of warm-up and sampling separately).
        init_jitter: start each chain at ``initial`` + Uniform(-init_jitter, init_jitter) per
            coordinate (Stan's default inits are ``initial`` 0 with ``init_jitter=2``); drawn from
            ``seed``, the same for every backend. 0 (default): start at ``initial``.
        random_steps: draw L uniformly from 1..num_steps at every transition.
        num_chains: independent chains.
        adapt_step_size: dual averaging towards ``target_accept`` during warm-up (Stan's gamma=0.05,
            kappa=0.75, t0=10); NUTS: the mean acceptance over each trajectory.
        target_accept: target mean acceptance probability, in (0, 1).
        seed: in [0, 2**64); chain c uses stream (seed, c) (``torch``: one torch generator on the
            device, seeded with it, draws for all chains: its draws differ from the other backends'
            and depend on ``num_chains``, ``device`` and ``dtype``, and under torchrun on the number
            of processes: each process's block has its own generator, seeded from (seed, its first
            chain)). ``None`` draws a seed from the operating system's entropy (under torchrun rank
            0's, for every process); it is recorded in ``result.settings["seed"]``, so the run can
            be repeated.
        backend: ``"cpp"``, ``"numba"``, ``"numpy"`` or ``"torch"`` (all chains in lockstep as one
            ``(num_chains, dim)`` tensor: one batched gradient per leapfrog step; for many chains,
            on a GPU, or a model written in torch).
        num_threads: threads for the chains (``cpp``: its own; ``numba``: its thread pool;
            ``torch``: torch's intra-op threads; restored afterwards). ``None`` uses all cores
            (``torch``: torch's current setting). Never changes the draws of the built-in targets.
        progress: ``"auto"`` (default): a tqdm bar on stderr (all chains' iterations, warm-up
            included) once the run has lasted 2 s, so short runs show nothing; ``True``: the bar
            from the start; ``False`` or ``None``: none; a callable: called as
            ``progress(done, total)`` after each chunk of iterations (``done`` iterations of every
            chain so far, warm-up included, of ``total``; ``torch``: after each transition or CUDA
            graph replay); an exception it raises stops the run. Never changes the draws.
        warn: after the run, warn (:class:`~pyvi.hmc.HMCWarning`) on divergences, split R-hat
            > 1.01 and bulk ESS < 100 per chain (:mod:`pyvi.hmc.checks`; R-hat and ESS from 100
            draws per chain on). ``False`` skips the checks and their cost (a sort of the draws
            per dimension). To silence them everywhere:
            ``warnings.simplefilter("ignore", pyvi.hmc.HMCWarning)``.
        device: ``torch`` only: ``"cpu"`` (the default) or ``"cuda"`` (``"cuda:N"``, a
            ``torch.device``).
        dtype: ``torch`` only: ``torch.float64`` (the default) or ``torch.float32``.
        cuda_graph: ``torch`` on CUDA only: ``None`` replays transitions from CUDA graphs and falls
            back to eager steps, with a RuntimeWarning, for a target that cannot be captured;
            ``True`` demands capture (an error where it fails); ``False`` runs eagerly.

    Returns:
        An :class:`HMCResult`. Under ``torchrun`` with N > 1 processes (:mod:`pyvi.distributed`)
        the chains are split over the processes in contiguous blocks; rank 0 returns all of them
        (``cpp``, ``numba``, ``numpy``: identical to one process's draws), and rank r > 0 its own
        block.

    Raises:
        ValueError: a setting out of range (counts beyond the native integer range included), a
            start where log p is not finite, fewer chains than processes under torchrun.
        pyvi.distributed.RankFailedError: under torchrun, another process failed (its error).
        TypeError: a target the backend cannot run, an argument of the wrong type (complex
            numbers included).
        KeyboardInterrupt: Ctrl-C during the run (within about one chunk).

    Example:
        >>> from pyvi.targets import Banana
        >>> result = sample(Banana.default(), [1.0, 0.5], num_samples=500, num_warmup=500,
        ...                 step_size=0.05, num_steps=30, num_chains=4, adapt_step_size=False, seed=1)
        >>> result.samples.shape, bool(result.rhat.max() < 1.01), result.num_divergent
        ((4, 500, 2), True, 0)
        >>> many = sample(Banana.default(), [1.0, 0.5], num_samples=200, num_warmup=200, step_size=0.05,
        ...               num_steps=30, num_chains=256, seed=1, backend="torch", warn=False)  # one tensor
        >>> many.samples.shape
        (256, 200, 2)
    """
    backend = choice(backend, "backend", BACKENDS)
    kernel = choice(kernel, "kernel", KERNELS)
    num_chains = native_count(num_chains, "num_chains", minimum=1)
    with progress_callback(progress, num_chains, f"{kernel} ({backend})") as progress:  # closed however it ends
        if not isinstance(warn, bool | np.bool_):
            raise TypeError(f"warn must be a bool, got {type(warn).__name__}")
        if kernel == "nuts":
            if backend == "torch":
                raise ValueError("kernel='nuts' runs on backend 'cpp', 'numba' or 'numpy' (the torch backend's chains "
                                 "move in lockstep: static HMC)")
            torch_options(backend, device, dtype, cuda_graph)  # refuses torch-only options
            return _sample_nuts(target, initial, num_samples, num_warmup, 1.0 if step_size is None else step_size,
                                num_steps, metric="diag" if metric is None else metric, max_tree_depth=max_tree_depth,
                                adapt_metric=adapt_metric, save_warmup=save_warmup, thin=thin, init_jitter=init_jitter,
                                random_steps=random_steps, num_chains=num_chains, adapt_step_size=adapt_step_size,
                                target_accept=target_accept, seed=seed, backend=backend, num_threads=num_threads,
                                progress=progress, warn=warn)
        if step_size is None or num_steps is None:
            raise TypeError("kernel='hmc' needs step_size and num_steps (kernel='nuts' needs neither)")
        if max_tree_depth != 10:
            raise ValueError("max_tree_depth is a NUTS setting: pass kernel='nuts'")
        if (metric not in (None, "identity")) or save_warmup is not False or thin != 1 or init_jitter != 0.0:
            # The per-chain driver: a diagonal or dense metric in Stan's windows, warm-up rows, thinning.
            if backend == "torch":
                raise ValueError("backend='torch' runs static HMC with the identity metric, every draw after warm-up")
            torch_options(backend, device, dtype, cuda_graph)
            return _sample_nuts(target, initial, num_samples, num_warmup, step_size, num_steps, kernel="hmc",
                                metric="identity" if metric is None else metric, max_tree_depth=max_tree_depth,
                                adapt_metric=adapt_metric, save_warmup=save_warmup, thin=thin, init_jitter=init_jitter,
                                random_steps=random_steps, num_chains=num_chains, adapt_step_size=adapt_step_size,
                                target_accept=target_accept, seed=seed, backend=backend, num_threads=num_threads,
                                progress=progress, warn=warn)
        settings = Settings.validated(num_samples=num_samples, num_warmup=num_warmup, step_size=step_size,
                                      num_steps=num_steps, random_steps=random_steps, adapt_step_size=adapt_step_size,
                                      target_accept=target_accept, seed=seed)
        threads = thread_count(num_threads)
        torch_settings = torch_options(backend, device, dtype, cuda_graph)
        target = as_target(target)
        if num_chains * settings.num_samples * target.dim > MAX_INT64 // 8:
            raise ValueError(f"num_chains * num_samples * dim = {num_chains} * {settings.num_samples} * {target.dim} "
                             "draws do not fit in memory")
        face = None if backend == "numpy" else native_face(target, backend)
        initial = _initial_positions(initial, num_chains, target.dim)
        settings = agree(settings)  # under torchrun: rank 0's (its seed, for seed=None)

        def run(rows: np.ndarray, first_chain: int, out=None) -> dict[str, np.ndarray]:  # chains first_chain, ...
            if backend == "numpy":
                return reference.sample_chains(target, rows, settings, progress, first_chain=first_chain, out=out)
            if backend == "torch":
                from pyvi.hmc.torch_backend import run_torch

                # One generator for all its chains: a distributed process's block gets its own.
                own = settings if first_chain == 0 else dataclasses.replace(settings, seed=int(
                    np.random.SeedSequence([settings.seed, first_chain]).generate_state(1, np.uint64)[0]))
                return run_torch(target, rows, own, num_threads=None if num_threads is None else threads,
                                 progress=progress, **torch_settings)
            return _RUN[backend](face, rows, settings, threads, progress, first_chain=first_chain, out=out)

        def allocate(num_chains: int) -> dict[str, np.ndarray]:  # every chain's outputs (rank 0's rows filled in place)
            return require("cpp").hmc_draws(num_chains, settings.num_samples, target.dim)

        # All here, or over the processes under torchrun (pyvi.distributed).
        draws = run_chains(run, initial, allocate=None if backend == "torch" else allocate)
        result = HMCResult(backend=backend, settings=settings.as_dict(), **draws)
        if warn:
            warn_about(result, stacklevel=2)
        return result


def _sample_nuts(target, initial, num_samples, num_warmup, step_size, num_steps, *, metric, max_tree_depth,
                 adapt_metric, save_warmup, thin, init_jitter, random_steps, num_chains, adapt_step_size,
                 target_accept, seed, backend, num_threads, progress, warn, kernel="nuts") -> HMCResult:
    """NUTS, or static HMC on the per-chain driver (a metric adapted in Stan's windows)."""
    if kernel == "nuts" and (num_steps is not None or random_steps):
        raise ValueError("num_steps and random_steps are static-HMC settings: NUTS chooses each trajectory's "
                         "length itself (bound it with max_tree_depth)")
    settings = nuts_runs.NutsSettings.validated(
        num_samples=num_samples, num_warmup=num_warmup, thin=thin, save_warmup=save_warmup, step_size=step_size,
        max_tree_depth=max_tree_depth, metric=metric, adapt_step_size=adapt_step_size, adapt_metric=adapt_metric,
        target_accept=target_accept, seed=seed, kernel=kernel, num_steps=1 if num_steps is None else num_steps,
        random_steps=random_steps)
    threads = thread_count(num_threads)
    target = as_target(target)
    if num_chains * settings.rows * target.dim > MAX_INT64 // 8:
        raise ValueError(f"num_chains * draws * dim = {num_chains} * {settings.rows} * {target.dim} "
                         "draws do not fit in memory")
    face = None if backend == "numpy" else native_face(target, backend)
    initial = _initial_positions(initial, num_chains, target.dim)
    settings = agree(settings)  # under torchrun: rank 0's (its seed, for seed=None)
    initial = _jittered(initial, init_jitter, settings.seed)

    def run(rows: np.ndarray, first_chain: int, out=None) -> dict[str, np.ndarray]:  # chains first_chain, ...
        if backend == "numpy":
            return nuts_runs.run_numpy(target, rows, settings, progress, first_chain=first_chain, out=out)
        return _RUN_NUTS[backend](face, rows, settings, threads, progress, first_chain=first_chain, out=out)

    def allocate(num_chains: int) -> dict[str, np.ndarray]:  # every chain's outputs (rank 0's rows filled in place)
        return require("cpp").nuts_draws(num_chains, settings.rows, target.dim, settings.metric == "dense")

    # All here, or over the processes under torchrun (pyvi.distributed).
    arrays = run_chains(run, initial, allocate=allocate)
    result = nuts_runs.to_result(arrays, settings, backend)
    if warn:
        warn_about(result, stacklevel=3)
    return result


def nuts(target, initial, num_samples: int = 1000, num_warmup: int = 1000, **options) -> HMCResult:
    """:func:`sample` with ``kernel="nuts"``: the No-U-Turn sampler with a diagonal metric and
    Stan's windowed warm-up by default (1000 warm-up iterations, 1000 draws, as Stan).

    References:
        Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), arXiv:1111.4246.
        Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017),
        arXiv:1701.02434.

    Example:
        >>> from pyvi.targets import Gaussian
        >>> result = nuts(Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 100.0]]), [0.0, 0.0], num_chains=2, seed=1)
        >>> result.samples.shape, result.inv_metric.shape, bool(80 < result.inv_metric[0, 1] < 125)
        ((2, 1000, 2), (2, 2), True)
    """
    if "kernel" in options:
        raise TypeError("nuts() got an unexpected keyword argument 'kernel'")
    return sample(target, initial, num_samples, num_warmup, kernel="nuts", **options)


def leapfrog(target, position, momentum, step_size: float, num_steps: int, *, backend: str = "cpp"):
    """Integrates Hamilton's equations for H = -log p(x) + |p|^2/2 with ``num_steps`` leapfrog steps.

    Args:
        target: as for :func:`sample`.
        position, momentum: ``(dim,)`` start.
        step_size: > 0.
        num_steps: >= 0 (numpy: the integration stops early, log_prob -inf, if the position
            overflows).
        backend: ``"cpp"``, ``"numba"``, ``"numpy"`` or ``"torch"`` (its leapfrog on one chain, in
            float64 on the CPU).

    Returns:
        ``(position, momentum, log_prob)`` at the end.

    Example:
        >>> from pyvi.targets import Gaussian
        >>> x, p, _ = leapfrog(Gaussian([0.0], [[1.0]]), [1.0], [0.0], 0.01, 157, backend="numpy")
        >>> bool(abs(x[0]) < 0.01)
        True
    """
    backend = choice(backend, "backend", BACKENDS)
    step_size = positive_float(step_size, "step_size")
    num_steps = native_count(num_steps, "num_steps")
    target = as_target(target)
    dim = target.dim
    position = as_float_array(position, "position", ndim=1).copy()
    momentum = as_float_array(momentum, "momentum", ndim=1).copy()
    for name, value in (("position", position), ("momentum", momentum)):
        if value.shape != (dim,):
            raise ValueError(f"{name} must have shape ({dim},), got {value.shape}")
    if backend == "cpp":
        face = native_face(target, "cpp")
        with reporting_exceptions(face, "hmc.leapfrog on backend 'cpp'"):
            return require("cpp").leapfrog(face, position, momentum, step_size, num_steps)
    if backend == "numba":
        return numba_leapfrog(native_face(target, "numba"), position, momentum, step_size, num_steps)
    if backend == "torch":
        native_face(target, "torch")  # the TypeError for a target without a torch face
        from pyvi.hmc.torch_backend import torch_leapfrog

        return torch_leapfrog(target, position, momentum, step_size, num_steps)
    log_prob, grad = target.log_prob_and_grad(position)
    if num_steps:
        position, momentum, _, log_prob = reference.leapfrog(target, position, momentum, grad, step_size, num_steps)
    return position, momentum, float(log_prob)
