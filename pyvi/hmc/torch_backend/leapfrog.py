"""The leapfrog (Stormer-Verlet) integrator on every chain at once: one batched gradient per step.

Half kicks at both ends and full kicks between drifts, so L steps cost L gradient evaluations and
the gradient at the start is the previous transition's. Each chain has its own step size, and with
random path lengths its own number of steps: the loop runs the longest path, and a chain whose
path has ended stands still (drift and kick coefficients 0) while the others finish; its log
density and gradient are re-evaluated at the same point, which gives the same values. csrc/core/
hmc/leapfrog.hpp integrates W chains in the same way, lane by lane.

References:
    Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), Sec. 2.3, arXiv:1206.1901.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["leapfrog"]


def leapfrog(log_prob_and_grad: Callable, metric, x: torch.Tensor, p: torch.Tensor, grad: torch.Tensor,
             first_kick: torch.Tensor, drifts: Iterable[torch.Tensor], kicks: Iterable[torch.Tensor]):
    """Integrates every chain along its path; ``x`` and ``p`` are updated in place.

    Args:
        log_prob_and_grad: the target's torch face, ``x (C, d) -> (log p (C,), grad (C, d))``.
        metric: the metric (its ``drift``).
        x, p: ``(C, d)`` start position and momentum, overwritten with the end point's.
        grad: ``(C, d)`` gradient of log p at ``x`` (read only).
        first_kick: ``(C, d)`` half step sizes of the opening half kick.
        drifts, kicks: one ``(C, d)`` tensor per step: each chain's drift step size and the kick
            after it (its step size, half of it after the chain's last drift, 0 once it has ended).

    Returns:
        ``(log_prob, grad)`` at the end points.
    """
    p.addcmul_(first_kick, grad)
    log_prob = None
    for drift, kick in zip(drifts, kicks, strict=True):
        metric.drift(x, p, drift)
        log_prob, grad = log_prob_and_grad(x)
        p.addcmul_(kick, grad)
    return log_prob, grad
