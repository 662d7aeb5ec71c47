"""pyvi: compiled-extension variational inference and MCMC.

The pieces of Problem Set 4 (banana posterior, HMC, k-NN KL, normalizing flows, VAE) as a library
with a C++/pybind11 core (``pyvi._core``), Numba kernels (``pyvi._numba``) and custom torch ops
(``pyvi._C``). ``pyvi.backends()`` says which native backends loaded.

Example:
    >>> import pyvi
    >>> banana = pyvi.targets.Banana.default()
    >>> result = pyvi.hmc.sample(banana, [1.0, 0.5], num_samples=200, num_warmup=200,
    ...                          step_size=0.05, num_steps=30, seed=0)
    >>> result.samples.shape
    (1, 200, 2)
"""

from pyvi import diagnostics, hmc, targets
from pyvi._backend import backends

__all__ = ["backends", "diagnostics", "hmc", "targets", "__version__"]
__version__ = "0.1.0"
