"""Numba kernels: pyvi's second native backend, written independently of the C++ core.

Each kernel mirrors a header of ``csrc/`` (same algorithm, same random stream), so the two can be
checked against each other draw by draw. Modules: ``hmc`` (the sampler: state, metric, leapfrog,
transition, dual averaging, driver), ``targets`` (each target's face and the registry), ``knn``
(the k-NN KL estimator), ``rng`` (xoshiro256++), ``registers`` (stack arrays), ``threads`` (the
thread count for one call). The sampler reads its constants and the shape of its outputs from
``pyvi._core``.

Kernels are compiled with ``cache=True``. Numba's on-disk cache checks only the source file of the
cached function, not the files of what it inlined or called (a target's face, the leapfrog inlined
into the driver): after editing a file here, delete ``pyvi/_numba/**/__pycache__/*.nb[ci]``.
"""

__all__ = ["hmc", "targets", "knn", "rng", "registers", "threads"]
