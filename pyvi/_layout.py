"""A parameter's place in a flat buffer, laid out as the parameter is.

Data-parallel steps keep every gradient (or parameter, or moment) in one flat buffer, one block per
parameter. Viewing a block with the parameter's own strides keeps an input-major weight (the fused
VAE stores two that way) input-major, so a gradient is copied in as it is laid out and the view can
become the ``.grad`` without a copy back (pyvi.distributed._FlatGradients, pyvi._shared_step).
"""

from __future__ import annotations

__all__ = ["laid_out_view"]


def laid_out_view(buffer, parameter, offset: int):
    """``parameter``'s shape at ``offset`` values into the 1-D tensor ``buffer``, with ``parameter``'s
    strides when it is dense (``empty_like``'s rule), else row-major.

    Example:
        >>> import torch
        >>> weight = torch.zeros(3, 2).t()  # (2, 3), input-major
        >>> view = laid_out_view(torch.arange(10.0), weight, 4)
        >>> view.shape, view.stride(), view[0].tolist()
        (torch.Size([2, 3]), (1, 2), [4.0, 6.0, 8.0])
    """
    import torch

    strides = torch.empty_like(parameter, device="meta").stride()
    return buffer.as_strided(parameter.shape, strides, buffer.storage_offset() + offset)
