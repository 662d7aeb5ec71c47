"""Numba kernels: pyvi's second native backend, written independently of the C++ core.

Each kernel mirrors one header of ``csrc/`` (same algorithm, same random stream), so the two can be
checked against each other draw by draw.
"""

__all__ = ["banana", "hmc", "knn", "rng"]
