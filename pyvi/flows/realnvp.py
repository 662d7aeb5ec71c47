"""RealNVP: affine coupling layers with a bounded log-scale and alternating masks.

References:
    L. Dinh, J. Sohl-Dickstein and S. Bengio, "Density estimation using Real NVP", ICLR 2017
    (arXiv:1605.08803), Section 3.
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctest)

from pyvi.flows.coupling import CouplingFlow

__all__ = ["RealNVP"]


class RealNVP(CouplingFlow):
    """``num_couplings`` affine couplings ``y_on = x_on * exp(s) + t``, with ``(s_raw, t)`` from one
    ReLU MLP of the conditioning half and ``s = scale_bound * tanh(s_raw / scale_bound)``.

    Args:
        dim: event dimension (>= 2).
        num_couplings: number of affine coupling layers (>= 1), masks alternating.
        hidden: width of each coupling's ReLU MLP.
        depth: number of hidden layers of that MLP (>= 1); all of them are used (the student's
            ``Scale`` net silently skipped its middle layers).
        scale_bound: bound on |s| per coupling (> 0).
        impl: ``"fused"`` (``torch.ops.pyvi.coupling_forward``; beyond the fused kernels' limits
            the reference, with a warning: see :class:`pyvi.flows.Flow`) or ``"reference"`` (plain torch).
        seed: seed of the initialisation; None uses torch's global generator.

    References:
        L. Dinh, J. Sohl-Dickstein and S. Bengio, "Density estimation using Real NVP", ICLR 2017
        (arXiv:1605.08803).

    Example:
        >>> flow = RealNVP(2, num_couplings=4, hidden=16, depth=2, seed=0)
        >>> x, log_q = flow.rsample_and_log_prob(6)
        >>> bool(torch.allclose(flow.log_prob(x), log_q, atol=1e-5))
        True
    """

    def __init__(
        self,
        dim: int = 2,
        num_couplings: int = 6,
        hidden: int = 8,
        depth: int = 2,
        scale_bound: float = 3.0,
        impl: str = "fused",
        seed: int | None = None,
    ):
        super().__init__(dim, num_couplings, hidden, depth, affine=True, scale_bound=scale_bound, impl=impl, seed=seed)
