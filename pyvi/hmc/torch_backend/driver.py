"""The torch HMC driver: warm-up and sampling of every chain in lockstep, eagerly or from CUDA graphs.

Each warm-up transition's acceptance goes to the per-chain dual averaging; each sampling
transition's state and info into the outputs that ``pyvi._core.hmc_draws`` defines (the same
:class:`pyvi.hmc.HMCResult` as the other backends). A warm-up and a sampling transition are each
one capture-safe step: on CUDA, :class:`pyvi._cuda_graph.GraphedSteps` captures several of them
into one CUDA graph and replays it (a few eager steps first; ``cuda_graph=False`` runs them
eagerly, the same kernels). A target whose code cannot be captured (it synchronises with the host)
makes the capture fail: with ``cuda_graph=None`` the run then carries on eagerly from where it was,
with a RuntimeWarning; with ``cuda_graph=True`` the error is raised.

Random numbers come from one stream per run, seeded with ``seed`` (:mod:`.rng`: numpy's PCG64 on
the CPU, a torch generator on CUDA): a run is reproducible for a seed, a device, a dtype and a
number of chains, but its draws differ from the cpp and numba backends' (whose chain c draws from
its own xoshiro256++ stream), and chain c's draws depend on how many chains run beside it. A
target with a fused op runs under ``torch.inference_mode`` (the op's autograd wrapper cost as much
as its kernel at 16,384 chains), any other under ``torch.no_grad`` (its face enables autograd for
its own gradient).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import numpy as np
import torch

from pyvi._backend import require
from pyvi._cuda_graph import GraphedSteps
from pyvi.hmc.settings import Settings, constants
from pyvi.hmc.torch_backend.draws import DrawRecorder
from pyvi.hmc.torch_backend.dual_averaging import DualAveraging
from pyvi.hmc.torch_backend.face import TorchFace, torch_face
from pyvi.hmc.torch_backend.leapfrog import leapfrog
from pyvi.hmc.torch_backend.metric import IdentityMetric
from pyvi.hmc.torch_backend.rng import RandomSource
from pyvi.hmc.torch_backend.state import State
from pyvi.hmc.torch_backend.transition import StaticKernel
from pyvi.targets.torch_target import check_output

__all__ = ["run_torch", "torch_leapfrog", "LEAPFROG_STEPS_PER_GRAPH", "MAX_TRANSITIONS_PER_GRAPH"]

#: A CUDA graph holds about this many leapfrog steps: at least one transition, at most
#: MAX_TRANSITIONS_PER_GRAPH (one replay per 16 transitions of L = 30; captures stay small for long paths).
LEAPFROG_STEPS_PER_GRAPH = 512
MAX_TRANSITIONS_PER_GRAPH = 16
#: Draws buffered on the CPU between two copies into the chain-major outputs (see .draws).
CPU_DRAWS_PER_FLUSH = 32


def run_torch(target, initial: np.ndarray, settings: Settings, *, device: torch.device, dtype: torch.dtype,
              cuda_graph: bool | None, num_threads: int | None,
              progress: Callable[[int, int], object] | None = None) -> dict[str, np.ndarray]:
    """Every chain of ``initial`` ``(num_chains, dim)`` on ``device``: warm-up, then sampling;
    returns the outputs of ``pyvi._core.hmc_draws`` filled in.

    ``num_threads`` sets torch's intra-op threads for the run (restored afterwards; None leaves
    them as they are). ``cuda_graph``: see the module docstring (only meaningful on CUDA).
    ``progress(done, total)`` runs after each eager transition or graph replay (iterations of
    every chain, warm-up included; pyvi.hmc.sample's ``progress``).
    """
    face = torch_face(target)
    on_device = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    grad_mode = torch.inference_mode() if face.fused else torch.no_grad()
    with _torch_threads(num_threads), grad_mode, on_device:
        return _Run(face, initial, settings, device, dtype, cuda_graph, progress).run()


def torch_leapfrog(target, position: np.ndarray, momentum: np.ndarray, step_size: float, num_steps: int):
    """The torch sampler's leapfrog on one chain, in float64 on the CPU: ``(position, momentum,
    log_prob)`` at the end (``pyvi.hmc.leapfrog(backend="torch")``)."""
    face = torch_face(target)
    x = torch.tensor(position, dtype=torch.float64).unsqueeze(0)
    p = torch.tensor(momentum, dtype=torch.float64).unsqueeze(0)
    with torch.no_grad():
        log_prob, grad = face(x)
        step = torch.full_like(x, step_size)
        half = step * 0.5
        if num_steps:
            log_prob, _ = leapfrog(face, IdentityMetric(x.shape[1], x.dtype, x.device), x, p, grad, half,
                                   [step] * num_steps, [step] * (num_steps - 1) + [half])
    return x[0].numpy(), p[0].numpy(), float(log_prob[0])


@contextlib.contextmanager
def _torch_threads(num_threads: int | None):
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Run:
    """One run's chains, kernel, adaptation, recorder and steps."""

    def __init__(self, face: TorchFace, initial: np.ndarray, settings: Settings, device: torch.device,
                 dtype: torch.dtype, cuda_graph: bool | None, progress: Callable[[int, int], object] | None = None):
        self.face, self.settings, self.device, self.progress = face, settings, device, progress
        num_chains, dim = initial.shape
        self.draws = require("cpp").hmc_draws(num_chains, settings.num_samples, dim)
        self.state = self._initial_state(torch.tensor(initial, dtype=dtype, device=device))
        self.step_size = torch.full((num_chains,), settings.step_size, dtype=torch.float64, device=device)
        c = constants()
        self.kernel = StaticKernel(face, self.state, settings.num_steps, settings.random_steps, c["max_energy_error"])
        self.kernel.set_step_size(self.step_size)
        self.adaptation = DualAveraging(self.step_size.clone(), settings.target_accept, c)
        self.random = RandomSource(settings.seed, device)
        self.capture = device.type == "cuda" and cuda_graph is not False
        self.fallback = cuda_graph is None
        self.steps_per_graph = max(1, min(MAX_TRANSITIONS_PER_GRAPH, LEAPFROG_STEPS_PER_GRAPH // settings.num_steps))
        chunk = self.steps_per_graph if device.type == "cuda" else CPU_DRAWS_PER_FLUSH
        self.recorder = DrawRecorder(self.draws, device, min(chunk, max(settings.num_samples, 1)))
        # Where the sampler is, for the note on an exception raised inside the target.
        self.phase, self.transition, self.phase_length = "warm-up", 0, settings.num_warmup
        self.first_call, self.capturing = 0, False

    def _initial_state(self, x: torch.Tensor) -> State:
        """The chains' state at their starts, where log p and its gradient must be finite."""
        self.face.context = lambda: "at the initial points (before the first transition)"
        log_prob, grad = self.face(x)
        check_output(log_prob, x, self.face.name)
        if not isinstance(grad, torch.Tensor) or grad.shape != x.shape or grad.dtype != x.dtype:
            raise ValueError(f"{self.face.name} must give a gradient shaped like its input {tuple(x.shape)}, "
                             f"got {getattr(grad, 'shape', type(grad).__name__)}")
        for values, what in ((log_prob, "log density"), (grad, "log density's gradient")):
            bad = ~torch.isfinite(values.reshape(len(x), -1)).all(dim=1)
            if bool(bad.any()):
                chain = int(bad.nonzero()[0, 0])
                raise ValueError(f"initial: the {what} is not finite at chain {chain}'s start")
        self.face.context = self._where
        return State(x, log_prob.clone(), grad.clone())

    def _where(self) -> str:
        """Where the sampler is (for an exception raised inside the target)."""
        where = (f"in {self.phase} transition {self.transition + 1} of {self.phase_length}, leapfrog step "
                 f"{self.face.calls - self.first_call} of {self.settings.num_steps}")
        return where + (", while capturing it into a CUDA graph" if self.capturing else "")

    def _begin_transition(self) -> None:
        self.first_call = self.face.calls

    def _warmup_step(self) -> None:
        self._begin_transition()
        info = self.kernel(self.state, self.random)
        if self.settings.adapt_step_size:
            self.adaptation.update(info.accept_prob, self.step_size)
            self.kernel.set_step_size(self.step_size)
        self.transition += 1

    def _sampling_step(self) -> None:
        self._begin_transition()
        info = self.kernel(self.state, self.random)
        self.recorder.record(self.state, info)
        self.transition += 1

    def _steps(self, phase: str, step, count: int, after=None) -> None:
        """``count`` transitions of ``step``, through CUDA graphs when capturing."""
        self.phase, self.transition, self.phase_length = phase, 0, count
        if count == 0:
            return

        offset = 0 if phase == "warm-up" else self.settings.num_warmup
        total = self.settings.num_warmup + self.settings.num_samples

        def done(number: int) -> None:
            self.transition = number  # a replay ran transitions the Python step only saw once, at capture
            if after is not None:
                after(number)
            if self.progress is not None:
                self.progress(offset + number, total)

        steps = _FallbackSteps(step, self, capture=self.capture, generators=self.random.generators,
                               steps_per_graph=self.steps_per_graph)
        steps.run(count, done)
        self.capture = steps.capture  # a failed capture stays failed for the sampling phase

    def run(self) -> dict[str, np.ndarray]:
        s = self.settings
        self._steps("warm-up", self._warmup_step, s.num_warmup)
        if s.adapt_step_size and s.num_warmup > 0:
            self.adaptation.final_step(self.step_size)
            self.kernel.set_step_size(self.step_size)
        self._steps("sampling", self._sampling_step, s.num_samples, self.recorder.after)
        self.draws["step_size"][:] = self.step_size.cpu().numpy()
        return self.draws


class _FallbackSteps(GraphedSteps):
    """:class:`GraphedSteps` that, with ``cuda_graph=None``, runs eagerly when a capture fails."""

    def __init__(self, step, run: _Run, **kwargs):
        super().__init__(step, **kwargs)
        self.sampler = run

    def _capture(self, count: int):
        if not self.capture:  # an earlier capture failed: the remainder runs eagerly too
            return _EagerReplay(self.step, count)
        stream, transition = torch.cuda.current_stream(), self.sampler.transition
        self.sampler.capturing = True
        try:
            return super()._capture(count)
        except Exception as error:
            # torch.cuda.graph leaves its capture stream current when capture_end raises.
            torch.cuda.set_stream(stream)
            self.sampler.transition = transition  # the captured steps never ran
            if not self.sampler.fallback:
                error.add_note("(hmc.sample with cuda_graph=True: the transition could not be captured into a CUDA "
                               "graph; pass cuda_graph=None to fall back to eager steps, or False)")
                raise
            warnings.warn(f"hmc.sample: the torch target {self.sampler.face.name} could not be captured into a CUDA "
                          f"graph ({type(error).__name__}: {error}); running the transitions eagerly instead",
                          RuntimeWarning, stacklevel=2)
            self.capture = False
            return _EagerReplay(self.step, count)
        finally:
            self.sampler.capturing = False


class _EagerReplay:
    """What a failed capture returns: ``replay()`` runs the steps eagerly."""

    def __init__(self, step, count: int):
        self.step, self.count = step, count

    def replay(self) -> None:
        for _ in range(self.count):
            self.step()
