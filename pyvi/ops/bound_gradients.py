"""The Python side of ``pyvi::bound_gradients`` (C++: csrc/torch/bound_gradients.cpp): its fake kernel.

The op takes a flow's reparameterised samples' log p, grad log p, log|det| and base noise and
returns the ELBO or IWAE bound and the gradients of -bound with respect to each sample's x and
log|det|, in one kernel: what vi.fit's device-resident step (pyvi/_fit_step.py) feeds the flow's
backward op. Not differentiable itself (it is a gradient).
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__: list[str] = []


@torch.library.register_fake("pyvi::bound_gradients")
def _bound_gradients_fake(log_p, grad_log_p, log_det, noise, log_normaliser, num_particles, iwae):
    check_same_device("bound_gradients", log_p=log_p, grad_log_p=grad_log_p, log_det=log_det, noise=noise)
    torch._check(log_p.dim() == 1 and grad_log_p.dim() == 2, lambda: "log_p (N,) and grad_log_p (N, dim)")
    return log_p.new_empty(()), grad_log_p.new_empty(grad_log_p.shape), log_det.new_empty(log_det.shape)
