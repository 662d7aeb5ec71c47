"""The Python side of ``pyvi::dense_linear`` (C++: csrc/torch/dense_linear.cpp): its fake kernel and the
thin wrapper. The user-facing layer, with its torch reference, is :mod:`pyvi.vae.dense_linear`.
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__ = ["dense_linear"]


@torch.library.register_fake("pyvi::dense_linear")
def _dense_linear_fake(x, weight, bias):
    if bias is None:
        check_same_device("dense_linear", x=x, weight=weight)
    else:
        check_same_device("dense_linear", x=x, weight=weight, bias=bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` through the fastest GEMM the build has, as one op."""
    return torch.ops.pyvi.dense_linear(x, weight, bias)
