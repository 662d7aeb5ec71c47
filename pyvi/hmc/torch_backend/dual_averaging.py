"""Nesterov dual averaging of log(step size) towards a target acceptance rate, for every chain at once.

The arithmetic of csrc/core/hmc/dual_averaging.hpp (whose constants it reads from
``pyvi._core.hmc_constants``) on ``(num_chains,)`` tensors: each chain adapts its own step size
from its own acceptance statistics. The state lives in device tensors updated in place, the
iteration count included, so that warm-up transitions replay from CUDA graphs.

References:
    Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), Algorithm 5, arXiv:1111.4246.
"""

from __future__ import annotations

import torch

__all__ = ["DualAveraging"]


class DualAveraging:
    """Per-chain dual averaging.

    Args:
        step_size: ``(num_chains,)`` initial step sizes.
        target_accept: delta, the acceptance rate aimed at.
        constants: ``pyvi._core.hmc_constants`` (gamma, kappa, t0, max_log_step).
    """

    def __init__(self, step_size: torch.Tensor, target_accept: float, constants: dict):
        self.gamma, self.kappa = constants["gamma"], constants["kappa"]
        self.t0, self.max_log_step = constants["t0"], constants["max_log_step"]
        self.target_accept = target_accept
        self.mu = torch.log(10.0 * step_size)  # shrinkage point
        self.log_step = torch.log(step_size)
        self.log_step_bar = torch.zeros_like(step_size)
        self.h_bar = torch.zeros_like(step_size)
        self.count = torch.zeros((), dtype=step_size.dtype, device=step_size.device)  # t

    def update(self, accept_prob: torch.Tensor, step_size: torch.Tensor) -> None:
        """Feeds one warm-up transition's acceptance probabilities; writes the next step sizes into
        ``step_size`` (in place, like every update here)."""
        self.count.add_(1.0)
        eta = (self.count + self.t0).reciprocal_()
        self.h_bar.mul_(1.0 - eta).addcmul_(eta, self.target_accept - accept_prob)
        torch.clamp(self.mu - self.count.sqrt() / self.gamma * self.h_bar, -self.max_log_step,
                    self.max_log_step, out=self.log_step)
        weight = self.count.pow(-self.kappa)
        self.log_step_bar.mul_(1.0 - weight).addcmul_(weight, self.log_step)
        torch.exp(self.log_step, out=step_size)

    def final_step(self, step_size: torch.Tensor) -> None:
        """Writes the step sizes to sample with once warm-up is over into ``step_size``."""
        torch.exp(torch.where(self.count > 0, self.log_step_bar, self.log_step), out=step_size)

