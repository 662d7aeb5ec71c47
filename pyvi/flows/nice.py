"""NICE: additive coupling layers with alternating masks and a final diagonal scaling.

References:
    L. Dinh, D. Krueger and Y. Bengio, "NICE: Non-linear Independent Components Estimation",
    ICLR 2015 workshop (arXiv:1410.8516), Sections 3.2-3.3.
"""

from __future__ import annotations

from pyvi.flows.coupling import CouplingFlow

__all__ = ["NICE"]


class NICE(CouplingFlow):
    """``num_couplings`` additive couplings (volume preserving) followed by ``x * exp(log_scale)``,
    the only source of a non-zero log-determinant, ``sum(log_scale)``.

    Args:
        dim: event dimension (>= 2).
        num_couplings: number of additive coupling layers (>= 1), masks alternating.
        hidden: width of each coupling's ReLU MLP.
        depth: number of hidden layers of that MLP (>= 1).
        impl: ``"fused"`` (``torch.ops.pyvi.coupling_forward``) or ``"reference"`` (plain torch).
        seed: seed of the initialisation; None uses torch's global generator.

    References:
        L. Dinh, D. Krueger and Y. Bengio, "NICE: Non-linear Independent Components Estimation",
        ICLR 2015 workshop (arXiv:1410.8516).

    Example:
        >>> flow = NICE(2, num_couplings=4, hidden=16, depth=2, seed=0)
        >>> x = flow.sample(5)
        >>> bool((flow.inverse(x)[0] - flow.inverse(x)[0]).abs().max() == 0)
        True
    """

    def __init__(
        self,
        dim: int = 2,
        num_couplings: int = 4,
        hidden: int = 32,
        depth: int = 2,
        impl: str = "fused",
        seed: int | None = None,
    ):
        super().__init__(dim, num_couplings, hidden, depth, affine=False, scale_bound=1.0, impl=impl, seed=seed)
