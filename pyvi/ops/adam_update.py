"""The Python side of ``pyvi::adam_update_`` (C++: csrc/torch/adam_update.cpp): its fake kernel.

One Adam step of a packed parameter tensor with everything on the device: the learning rate read
from a schedule at a device-side step index, a non-finite step skipped and recorded as NaN in the
history, the index advanced in place (pyvi/_fit_step.py). It mutates its arguments and returns nothing.
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__: list[str] = []


@torch.library.register_fake("pyvi::adam_update_")
def _adam_update_fake(param, grad, exp_avg, exp_avg_sq, step, lr, index, bound, history, beta1, beta2, eps):
    check_same_device("adam_update_", param=param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, step=step,
                      lr=lr, index=index, bound=bound, history=history)
