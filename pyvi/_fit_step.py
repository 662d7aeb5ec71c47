"""``vi.fit``'s training step with all of its state on the device: a handful of kernels, no host
synchronisation, so that on a GPU it runs inside CUDA graphs (pyvi/_cuda_graph.py).

One step of a fused flow on a target with a fused log-joint op (the banana's) is

    noise ~ N(0, I), z = loc + scale * noise          (torch.randn with the fit's generator, addcmul)
    x, log|det|, states = flow forward op (z)          (pyvi::coupling_forward / planar_forward)
    log p, grad log p = target op (x)                  (pyvi::banana_log_joint)
    bound, dL/dx, dL/dlog|det| = pyvi::bound_gradients (ELBO or IWAE; one kernel)
    grad = flow backward op (dL/dx, dL/dlog|det|)      (analytic, parameter reduction inside)
    pyvi::adam_update_(params, grad, ...)              (one kernel: Adam at lr[step], skips a
                                                       non-finite step, records the bound, step += 1)

Everything the host used to read per step (is the bound finite? what was it? which learning rate
now?) lives in device tensors: the learning-rate schedule is a table indexed by a device step
counter, the history is written on the device and read once at the end. The gradients are
those of vi.fit's CPU fast path bit for bit, and the update is torch.optim.Adam's (pyvi/_adam.py) up
to fused multiply-adds, so on the CPU this step reproduces fit's parameters to ~1e-12 relative after
tens of steps (tested); the bound itself is summed in another order (last bits).

References:
    D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (arXiv:1412.6980).
    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016
    (arXiv:1509.00519).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

import pyvi.ops  # noqa: F401  (pyvi._C and the ops' fake kernels)

__all__ = ["DeviceFit", "lr_schedule"]


def lr_schedule(lr: float, num_steps: int, schedule: str) -> np.ndarray:
    """The learning rate of each step exactly as fit's eager loop sees it: torch's
    CosineAnnealingLR (to lr / 100) stepped once per step, or a constant."""
    if schedule == "constant":
        return np.full(num_steps, lr)
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(dummy, T_max=num_steps, eta_min=lr / 100)
    rates = np.empty(num_steps)
    for step in range(num_steps):
        rates[step] = dummy.param_groups[0]["lr"]
        dummy._opt_called = True  # what optimizer.step() records; the scheduler warns without it
        scheduler.step()
    return rates


class DeviceFit:
    """The device-resident training state and step of one ``vi.fit`` run (see the module docstring).

    Args:
        flow: a fused flow whose parameters are one packed tensor (``flow.params``), trained in place.
        ops: the flow's ``(forward_op, backward_op, config)``.
        log_joint: ``x -> (log p(y, x), grad log p)`` with an analytic gradient (a target's fused op).
        num_steps, batch_size, num_particles, objective: as for ``vi.fit``.
        lr_rates: ``(num_steps,)`` learning rate per step (:func:`lr_schedule`).
        generator: the fit's generator, on the flow's device.
        betas, eps: Adam's.
        reduce: ``(grad, bound) -> (grad, bound)`` between backward and Adam, or None: under torchrun
            the sum over the processes (:mod:`pyvi.distributed`).
    """

    def __init__(self, flow, ops, log_joint: Callable, num_steps: int, batch_size: int, num_particles: int,
                 objective: str, lr_rates: np.ndarray, generator: torch.Generator,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, reduce: Callable | None = None):
        self.forward_op, self.backward_op, self.config = ops
        self.log_joint = log_joint
        self.flow = flow
        self.param = flow.params.detach()  # the same storage: updates land in the flow
        device = self.param.device
        self.exp_avg = torch.zeros_like(self.param)
        self.exp_avg_sq = torch.zeros_like(self.param)
        self.step_count = torch.zeros((), dtype=torch.float64, device=device)
        self.index = torch.zeros((), dtype=torch.int64, device=device)
        self.lr = torch.as_tensor(np.asarray(lr_rates, dtype=np.float64), device=device)
        self.history = torch.full((num_steps,), math.nan, dtype=torch.float64, device=device)
        self.num = batch_size * num_particles
        self.num_particles = num_particles
        self.iwae = objective == "iwae"
        self.generator = generator
        self.betas, self.eps = betas, eps
        self.reduce = reduce
        # The base buffers are fixed during training: log N's normaliser is computed once.
        self.log_normaliser = float(flow.base_scale.log().sum()) + 0.5 * flow.dim * math.log(2 * math.pi)

    @torch.no_grad()
    def step(self) -> None:
        """One training step; capture-safe (no host synchronisation, fixed shapes)."""
        flow = self.flow
        noise = torch.randn(self.num, flow.dim, generator=self.generator, dtype=self.param.dtype,
                            device=self.param.device)
        z = torch.addcmul(flow.base_loc, flow.base_scale, noise)
        x, log_det, states = self.forward_op(z, self.param, *self.config)
        log_p, grad_log_p = self.log_joint(x)
        bound, grad_x, grad_log_det = torch.ops.pyvi.bound_gradients(
            log_p, grad_log_p, log_det, noise, self.log_normaliser, self.num_particles, self.iwae)
        _, grad = self.backward_op(grad_x, grad_log_det, self.param, states, *self.config)
        if self.reduce is not None:
            grad, bound = self.reduce(grad, bound)
        torch.ops.pyvi.adam_update_(self.param, grad, self.exp_avg, self.exp_avg_sq, self.step_count, self.lr,
                                    self.index, bound, self.history, self.betas[0], self.betas[1], self.eps)
