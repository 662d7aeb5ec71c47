"""Normalizing flows on R^d with a fused (custom-op) and a reference (plain torch) implementation.

- :class:`PlanarFlow` (Rezende & Mohamed 2015), with the invertibility constraint;
- :class:`NICE` (Dinh et al. 2014): additive couplings and a final diagonal scaling;
- :class:`RealNVP` (Dinh et al. 2016): affine couplings with a bounded scale.

All share :class:`Flow`'s torch-distribution-like interface: ``rsample_and_log_prob(n)``,
``sample(n)``, ``log_prob(x)``, ``forward(z) -> (x, log_det)``, ``inverse(x)``, and switch between
``impl="fused"`` and ``impl="reference"`` with the same parameters and state dict. :class:`Flow` is
the contract a new flow fulfils (its packed ``params``, the reference forward, the inverse, and
optionally its fused ops, :meth:`Flow.fused_ops`).

References:
    D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows", ICML 2015
    (arXiv:1505.05770).
    L. Dinh, D. Krueger and Y. Bengio, "NICE", arXiv:1410.8516.
    L. Dinh, J. Sohl-Dickstein and S. Bengio, "Density estimation using Real NVP", arXiv:1605.08803.
"""

from pyvi.flows.base import IMPLS, Flow, FusedOps
from pyvi.flows.coupling import CouplingFlow
from pyvi.flows.nice import NICE
from pyvi.flows.planar import PlanarFlow
from pyvi.flows.realnvp import RealNVP

__all__ = ["Flow", "FusedOps", "CouplingFlow", "PlanarFlow", "NICE", "RealNVP", "IMPLS"]
