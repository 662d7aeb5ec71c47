"""pyvi: compiled-extension variational inference and MCMC.

The pieces of Problem Set 4 (banana posterior, HMC, k-NN KL, normalizing flows, VAE) as a library
with a C++/pybind11 core (``pyvi._core``), Numba kernels (``pyvi._numba``) and custom torch ops
(``pyvi._C``). ``pyvi.backends()`` says which native backends loaded.

Submodules are imported on first use (``pyvi.hmc``, ``pyvi.targets``, ...), so ``import pyvi``
stays cheap and never fails because one extension is missing. The library's modules never import
the application, ``pyvi.app`` (the ``pyvi`` command line, the report pipeline, its plots); the
application's old names ``pyvi.cli``, ``pyvi.pipeline``, ``pyvi.plots`` and ``pyvi.report`` still
resolve as attributes, with a DeprecationWarning naming the new place (``import pyvi.plots`` does
not: those modules are gone).

Example:
    >>> import pyvi
    >>> banana = pyvi.targets.Banana.default()
    >>> result = pyvi.hmc.sample(banana, [1.0, 0.5], num_samples=200, num_warmup=200,
    ...                          step_size=0.05, num_steps=30, seed=0)
    >>> result.samples.shape
    (1, 200, 2)
"""

import importlib
import warnings

from pyvi._backend import backends

__version__ = "0.1.0"
#: Public submodules, imported lazily by ``pyvi.<name>``.
SUBMODULES = ("app", "convergence", "data", "diagnostics", "divergence", "flows", "ground_truth", "hmc",
              "inference_data", "models", "ops", "refine", "summary", "targets", "vae", "vi")
#: Application modules that sat beside the library modules before pyvi.app -> where they are now.
_MOVED = {name: f"pyvi.app.{name}" for name in ("cli", "pipeline", "plots", "report")}
__all__ = ["backends", "__version__", *SUBMODULES]


def __getattr__(name: str):
    if name in SUBMODULES:
        return importlib.import_module(f"pyvi.{name}")
    if name in _MOVED:
        warnings.warn(f"pyvi.{name} moved to {_MOVED[name]} (the application layer); the old name will be removed",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module 'pyvi' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBMODULES))
