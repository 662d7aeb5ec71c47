"""One static-HMC transition of every chain at once: the kernel (random, state) -> (state, info).

Per chain, as in csrc/core/hmc/transition.hpp: draw the path length (with ``random_steps``) and
the momentum, integrate (all chains together, see :mod:`.leapfrog`; or, for a target with a fused
leapfrog op, every chain's whole path in that one op, the same arithmetic), then accept or reject
by the energy error. The random numbers come in a fixed order (path lengths, momenta, accept uniforms),
each a batch for all chains (:mod:`.rng`). A transition whose end point, momentum or log
density is not finite (a user target that returned NaN or +inf, a trajectory that overflowed) has
an infinite energy error: it is rejected and divergent, and no NaN ever reaches the state.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434
    (divergences).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pyvi.hmc.torch_backend.leapfrog import leapfrog
from pyvi.hmc.torch_backend.metric import IdentityMetric
from pyvi.hmc.torch_backend.state import Info, State

__all__ = ["StaticKernel"]


class StaticKernel:
    """Static HMC with a fixed or uniformly random path length, on the chains of ``state``.

    Each chain's step size lives in ``(num_chains, dim)`` tensors set by :meth:`set_step_size`
    (elementwise ops on equal shapes: torch broadcasts a ``(num_chains, 1)`` column over a short
    last dimension ~20x slower on the CPU), and in a ``(num_chains,)`` column for a fused
    trajectory op.

    Args:
        log_prob_and_grad: the target's torch face (:mod:`.face`); its ``trajectory``, when it has
            one, integrates the chains' paths in one op (x, momentum and grad in place, into
            buffers allocated here once: a CUDA graph replays it on the same memory).
        state: the chains (its tensors fix the batch shape, dtype and device).
        num_steps: L, or its maximum with ``random_steps``.
        random_steps: draw each chain's L uniformly from 1..num_steps at every transition.
        max_energy_error: the divergence threshold (``pyvi._core.hmc_constants``).
    """

    def __init__(self, log_prob_and_grad: Callable, state: State, num_steps: int, random_steps: bool,
                 max_energy_error: float):
        self.log_prob_and_grad = log_prob_and_grad
        self.num_steps, self.random_steps = num_steps, random_steps
        self.max_energy_error = max_energy_error
        x = state.x
        self.num_chains, self.dim = x.shape
        self.metric = IdentityMetric(self.dim, x.dtype, x.device)
        self.step = torch.zeros_like(x)
        self.half = torch.zeros_like(x)
        self.fixed_length = torch.full((self.num_chains,), num_steps, dtype=torch.int32, device=x.device)
        self.zeros = torch.zeros_like(x)
        self.trajectory = getattr(log_prob_and_grad, "trajectory", None)
        if self.trajectory is not None:
            self.step_column = torch.zeros(self.num_chains, dtype=x.dtype, device=x.device)
            self.end_x, self.end_grad = torch.empty_like(x), torch.empty_like(x)

    def set_step_size(self, step_size: torch.Tensor) -> None:
        """Each chain's step size from now on (``(num_chains,)``; in place, capture-safe)."""
        self.step.copy_(step_size.unsqueeze(1).expand(self.num_chains, self.dim))
        torch.mul(self.step, 0.5, out=self.half)
        if self.trajectory is not None:
            self.step_column.copy_(step_size)

    def _rows(self, values: torch.Tensor) -> torch.Tensor:
        """A ``(num_chains,)`` tensor repeated along each row: ``(num_chains, dim)``."""
        return values.repeat_interleave(self.dim).view(self.num_chains, self.dim)

    def _length(self, random) -> torch.Tensor:
        """Each chain's path length, ``(num_chains,)`` int32."""
        if not self.random_steps:
            return self.fixed_length
        # L = 1 + floor(u * num_steps), u uniform in [0, 1): the C++ sampler's formula.
        length = random.uniform(self.num_chains)
        return length.mul_(self.num_steps).floor_().add_(1.0).to(torch.int32)

    def _coefficients(self, length: torch.Tensor):
        """The leapfrog's per-step coefficients for paths of ``length`` (see :func:`leapfrog`)."""
        step, half, num_steps = self.step, self.half, self.num_steps
        if not self.random_steps:
            return [step] * num_steps, [step] * (num_steps - 1) + [half]
        rows = self._rows(length)
        # Built step by step (a table for all steps would hold L * C * d values).
        drifts = (torch.where(rows > s, step, self.zeros) for s in range(num_steps))
        kicks = (torch.where(rows > s + 1, step, torch.where(rows == s + 1, half, self.zeros))
                 for s in range(num_steps))
        return drifts, kicks

    def _integrate(self, state: State, p: torch.Tensor, length: torch.Tensor):
        """Every chain's end point from the state with momentum ``p`` (updated in place): ``(x,
        log_prob, grad)``, x and grad fresh tensors or the fused path's buffers, never the state's."""
        if self.trajectory is not None:
            x, grad = self.end_x.copy_(state.x), self.end_grad.copy_(state.grad)
            return x, self.trajectory(x, p, grad, self.step_column, length), grad
        drifts, kicks = self._coefficients(length)
        x = state.x.clone()
        log_prob, grad = leapfrog(self.log_prob_and_grad, self.metric, x, p, state.grad, self.half, drifts, kicks)
        return x, log_prob, grad

    def __call__(self, state: State, random) -> Info:
        """Moves every chain one transition on (``state`` updated in place); returns what each
        transition did. ``random``: the run's :class:`~pyvi.hmc.torch_backend.rng.RandomSource`."""
        metric = self.metric
        length = self._length(random)
        p = metric.sample_momentum(state.x, random)
        energy = metric.kinetic_energy(p).sub_(state.log_prob)
        x, log_prob, grad = self._integrate(state, p, length)
        energy_error = metric.kinetic_energy(p).sub_(log_prob).sub_(energy)
        # x * 0 sums to 0 on a finite row and to NaN on any other: an end point off the reals (its
        # log density may be finite: the target saw 0 there, see face.py) makes the error NaN.
        energy_error.add_(torch.mv(x * 0.0, metric.halves))
        # Overflow, NaN or +inf log density is the extreme of divergence: reject it.
        energy_error = torch.where(torch.isfinite(energy_error), energy_error, torch.inf)
        accept_prob = torch.exp(-energy_error.clamp(min=0.0))
        accept = random.uniform(self.num_chains) < accept_prob
        rows = self._rows(accept)
        torch.where(rows, x, state.x, out=state.x)
        torch.where(rows, grad, state.grad, out=state.grad)
        torch.where(accept, log_prob, state.log_prob, out=state.log_prob)
        return Info(accept_prob, energy_error, energy_error > self.max_energy_error, length)
