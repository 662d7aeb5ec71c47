"""The Python side of ``pyvi::binarize_rows`` (C++: csrc/torch/binarize_rows.cpp): its fake kernel.

Gathers a VAE minibatch's rows (order[step * stride + r]) and binarises them with seeds[step],
step being a device tensor, in one kernel: the same bits as ``binarize(images[rows], seed)``, and
what lets a CUDA graph of the training step take a new batch on every replay (pyvi/vae/epoch.py).
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__: list[str] = []


@torch.library.register_fake("pyvi::binarize_rows")
def _binarize_rows_fake(images, order, seeds, step, stride, batch_size):
    check_same_device("binarize_rows", images=images, order=order, seeds=seeds, step=step)
    return images.new_empty((batch_size, images.shape[1]))
