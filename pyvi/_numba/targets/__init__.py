"""Log densities for the Numba samplers: one module per target, found through a registry.

Adding a target: a module here with its face (a namedtuple of parameters) and its ``@njit`` log
density decorated with ``@register(Face, dim=...)``, plus its name in the import line below.
"""

from pyvi._numba.targets.registry import (
    fixed_dim_of,
    has_fixed_dim,
    is_registered,
    log_prob_and_grad,
    log_prob_and_grad_batch,
    register,
    saved_faces_only,
)

from pyvi._numba.targets import banana, funnel, gaussian, gaussian_mixture, hybrid_rosenbrock  # noqa: E402, F401  (the built-in faces register themselves)

__all__ = ["register", "is_registered", "saved_faces_only", "log_prob_and_grad", "log_prob_and_grad_batch",
           "has_fixed_dim", "fixed_dim_of"]
