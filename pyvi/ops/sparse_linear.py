"""The Python side of ``pyvi::sparse_linear`` / ``pyvi::sparse_linear_backward`` (C++:
csrc/torch/sparse_linear.cpp): their fake kernels and the thin wrapper. The user-facing layer, with
its torch reference, is :mod:`pyvi.vae.sparse_linear`.
"""

from __future__ import annotations

import torch

from pyvi.ops._fake import check_same_device

__all__ = ["sparse_linear"]


@torch.library.register_fake("pyvi::sparse_linear")
def _sparse_linear_fake(x, weight, bias, relu):
    check_same_device("sparse_linear", x=x, weight=weight, bias=bias)
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("pyvi::sparse_linear_backward")
def _sparse_linear_backward_fake(grad, x, output, relu):
    check_same_device("sparse_linear_backward", grad=grad, x=x, output=output)
    # The weight gradient comes input-major, (in, out) contiguous seen as (out, in).
    return grad.new_empty(grad.shape), x.new_empty((x.shape[1], grad.shape[1])).t(), grad.new_empty(grad.shape[1:])


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` over the nonzero entries of x, as one fused op."""
    return torch.ops.pyvi.sparse_linear(x, weight, bias, bool(relu))
