"""Checks shared by the ops' fake kernels: the C++ ops' device rule, for tensors that never reach C++.

A CPU tensor beside a ``meta`` one dispatches to the fake kernel (the Meta key wins), so without
this check such a call would return uninitialised CPU memory instead of an error.
"""

from __future__ import annotations

import torch

__all__ = ["check_same_device"]


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    """Raises the C++ ops' ValueError unless every tensor is on the first one's device."""
    (first_name, first), *rest = tensors.items()
    for name, tensor in rest:
        if tensor.device != first.device:
            raise ValueError(
                f"{op}: {name} is on {tensor.device} but {first_name} is on {first.device}; "
                "all tensor arguments must be on one device"
            )
