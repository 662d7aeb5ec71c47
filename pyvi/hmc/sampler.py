"""``sample`` and ``leapfrog``: argument checks, then the backend that runs the target's face."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyvi._backend import require
from pyvi._validate import as_float_array, choice, positive_float
from pyvi.hmc import reference
from pyvi.hmc.checks import warn_about
from pyvi.hmc.native import numba_leapfrog, reporting_exceptions, run_cpp, run_numba
from pyvi.hmc.result import HMCResult
from pyvi.hmc.settings import MAX_INT64, Settings, native_count, thread_count, torch_options
from pyvi.targets.base import as_target, native_face

__all__ = ["sample", "leapfrog", "BACKENDS"]

BACKENDS = ("cpp", "numba", "numpy", "torch")
_RUN = {"cpp": run_cpp, "numba": run_numba}


def _initial_positions(initial, num_chains: int, dim: int) -> np.ndarray:
    initial = as_float_array(initial, "initial", ndim=(1, 2))
    if initial.ndim == 1:
        if initial.shape != (dim,):
            raise ValueError(f"initial must have shape ({dim},) or (num_chains, {dim}), got {initial.shape}")
        initial = np.broadcast_to(initial, (num_chains, dim))
    elif initial.shape != (num_chains, dim):
        raise ValueError(f"initial must have shape ({dim},) or ({num_chains}, {dim}), got {initial.shape}")
    return np.ascontiguousarray(initial, dtype=np.float64)


def sample(
    target,
    initial,
    num_samples: int,
    num_warmup: int,
    step_size: float,
    num_steps: int,
    *,
    random_steps: bool = False,
    num_chains: int = 1,
    adapt_step_size: bool = True,
    target_accept: float = 0.8,
    seed: int | None = 0,
    backend: str = "cpp",
    num_threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    warn: bool = True,
    device=None,
    dtype=None,
    cuda_graph: bool | None = None,
) -> HMCResult:
    """Draws from ``target`` with HMC (identity mass matrix, leapfrog integrator).

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
            ``adapt_step_size``.
        step_size: leapfrog step size: the initial one when adapting (the default), else the one
            used throughout.
        num_steps: leapfrog steps per transition L (its maximum if ``random_steps``).
        random_steps: draw L uniformly from 1..num_steps at every transition.
        num_chains: independent chains.
        adapt_step_size: dual averaging towards ``target_accept`` during warm-up (Stan's gamma=0.05,
            kappa=0.75, t0=10).
        target_accept: target mean acceptance probability, in (0, 1).
        seed: in [0, 2**64); chain c uses stream (seed, c) (``torch``: one torch generator on the
            device, seeded with it, draws for all chains: its draws differ from the other backends'
            and depend on ``num_chains``, ``device`` and ``dtype``). ``None`` draws a seed from the
            operating system's entropy; it is recorded in ``result.settings["seed"]``, so the run
            can be repeated.
        backend: ``"cpp"``, ``"numba"``, ``"numpy"`` or ``"torch"`` (all chains in lockstep as one
            ``(num_chains, dim)`` tensor: one batched gradient per leapfrog step; for many chains,
            on a GPU, or a model written in torch).
        num_threads: threads for the chains (``cpp``: its own; ``numba``: its thread pool;
            ``torch``: torch's intra-op threads; restored afterwards). ``None`` uses all cores
            (``torch``: torch's current setting). Never changes the draws of the built-in targets.
        progress: called as ``progress(done, total)`` after each chunk of iterations (``done``
            iterations of every chain so far, warm-up included, of ``total``; ``torch``: after each
            transition or CUDA graph replay), e.g. to drive a progress bar; an exception it raises
            stops the run. Never changes the draws.
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
        An :class:`HMCResult`.

    Raises:
        ValueError: a setting out of range (counts beyond the native integer range included), a
            start where log p is not finite.
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
    num_chains = native_count(num_chains, "num_chains", minimum=1)
    settings = Settings.validated(num_samples=num_samples, num_warmup=num_warmup, step_size=step_size,
                                  num_steps=num_steps, random_steps=random_steps, adapt_step_size=adapt_step_size,
                                  target_accept=target_accept, seed=seed)
    threads = thread_count(num_threads)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable (done, total) or None, got {type(progress).__name__}")
    if not isinstance(warn, bool | np.bool_):
        raise TypeError(f"warn must be a bool, got {type(warn).__name__}")
    torch_settings = torch_options(backend, device, dtype, cuda_graph)
    target = as_target(target)
    if num_chains * settings.num_samples * target.dim > MAX_INT64 // 8:
        raise ValueError(f"num_chains * num_samples * dim = {num_chains} * {settings.num_samples} * {target.dim} "
                         "draws do not fit in memory")
    face = None if backend == "numpy" else native_face(target, backend)
    initial = _initial_positions(initial, num_chains, target.dim)
    if backend == "numpy":
        draws = reference.sample_chains(target, initial, settings, progress)
    elif backend == "torch":
        from pyvi.hmc.torch_backend import run_torch

        draws = run_torch(target, initial, settings, num_threads=None if num_threads is None else threads,
                          progress=progress, **torch_settings)
    else:
        draws = _RUN[backend](face, initial, settings, threads, progress)
    result = HMCResult(backend=backend, settings=settings.as_dict(), **draws)
    if warn:
        warn_about(result, stacklevel=2)
    return result


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
