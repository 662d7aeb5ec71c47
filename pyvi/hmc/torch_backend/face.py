"""The target's torch face, as the torch sampler calls it: ``x (C, d) -> (log p (C,), grad (C, d))``.

A target with a fused log-joint op (:meth:`pyvi.targets.Target.fused_log_joint`, the banana's)
gives log p and its analytic gradient in one kernel, with no autograd graph; any other target with
a torch log density (:meth:`pyvi.targets.Target.torch_log_prob`, a
:class:`pyvi.targets.TorchTarget`'s ``fn``) is differentiated by autograd, one reverse pass per
leapfrog step for all chains. A target that also has a fused leapfrog op
(:meth:`pyvi.targets.Target.fused_leapfrog`, the banana's) hands it over as the face's
``trajectory``: the sampler then integrates every chain's whole path in one op. The face counts
its calls, so that an exception raised inside the target can say at which transition and leapfrog
step it happened.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from pyvi.targets.base import native_face
from pyvi.targets.torch_target import autograd_log_prob_and_grad

__all__ = ["TorchFace", "torch_face"]


class TorchFace:
    """A torch log density with its gradient, batched over chains.

    Args:
        log_prob_and_grad: ``x (C, d) -> (log p (C,), grad (C, d))``.
        name: what it is, for messages.
        sanitise: hand it finite positions only: a chain whose trajectory overflowed (its
            transition is rejected whatever it gets) is evaluated at 0 instead of inf or NaN, which
            user code (a ``torch.distributions`` support check, say) may refuse with an exception.
        fused: it is a fused op with an analytic gradient (no autograd).
        trajectory: the target's fused leapfrog op (:meth:`pyvi.targets.Target.fused_leapfrog`), or
            None: the sampler then steps with ``log_prob_and_grad``.
    """

    def __init__(self, log_prob_and_grad: Callable, name: str, *, sanitise: bool, fused: bool,
                 trajectory: Callable | None = None):
        self.log_prob_and_grad, self.name = log_prob_and_grad, name
        self.sanitise, self.fused, self.trajectory = sanitise, fused, trajectory
        self.calls = 0
        #: Says where the sampler is when the target raises (set by the driver): added to the error.
        self.context: Callable[[], str] | None = None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        try:
            if self.sanitise:
                x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            return self.log_prob_and_grad(x)
        except Exception as error:
            if self.context is not None:
                error.add_note(f"(raised by the torch target {self.name} {self.context()})")
            raise


def torch_face(target) -> TorchFace:
    """The face of ``target`` that ``backend="torch"`` runs: its fused log-joint op (and fused
    leapfrog op) where it has one, else its torch log density through autograd.

    Raises:
        TypeError: the target has neither (the message names the target and what to use instead).
    """
    name = type(target).__name__
    fused = target.fused_log_joint()
    if fused is not None:
        return TorchFace(fused, f"{name} (fused log-joint op)", sanitise=False, fused=True,
                         trajectory=target.fused_leapfrog())
    log_prob = native_face(target, "torch")
    return TorchFace(partial(autograd_log_prob_and_grad, log_prob), f"{name} (autograd)", sanitise=True, fused=False)
