"""pyvi's custom torch ops (``torch.ops.pyvi.*``, kernels in ``pyvi._C``): the Python side of each.

Every op (or family of ops) is one unit. Its C++ side is ``csrc/torch/<op>.cpp`` (schema, argument
checks, config, C++ autograd kernel, registration) with its kernels in ``csrc/torch/cpu/<op>_cpu.cpp``
and ``csrc/torch/cuda/<op>_cuda.cu``; its Python side is the module ``pyvi.ops.<op>`` here, which
holds the op's fake kernels (``torch.library.register_fake``: shapes and devices for
``torch.compile`` and ``torch.library.opcheck``, checked as the C++ op checks them), its thin
wrapper, and whatever contract the C++ side exports (layouts, size limits), read from ``pyvi._C``:

- :mod:`pyvi.ops.banana`: ``banana_log_joint`` (the public :func:`banana_log_joint`);
- :mod:`pyvi.ops.planar`: ``planar_forward``, ``planar_backward``;
- :mod:`pyvi.ops.coupling`: ``coupling_forward``, ``coupling_backward``, the packed layout and limits;
- :mod:`pyvi.ops.vae_likelihood`: ``binarize``, ``bernoulli_log_lik(_backward)``,
  ``gaussian_log_lik(_backward)``;
- :mod:`pyvi.ops.sparse_linear`, :mod:`pyvi.ops.dense_linear`, :mod:`pyvi.ops.gaussian_latent`:
  the VAE's layers (and their ``_backward`` ops);
- :mod:`pyvi.ops.bound_gradients`, :mod:`pyvi.ops.adam_update`: vi.fit's device-resident training step;
  :mod:`pyvi.ops.binarize_rows`: the VAE's device-resident minibatch (both for CUDA graphs).

The user-facing modules (``pyvi.flows``, ``pyvi.vae``, ``pyvi.targets``) import from here at first
use. The rule when ``pyvi._C`` is missing (not built, or built against another torch): importing
this package raises the ImportError of :func:`pyvi._backend.require`, which says what is missing
and how to build it. So everything that needs ``pyvi._C``, a kernel or a contract it defines (a
fused op, ``binarize``, a coupling flow's parameter layout), raises that error, and nothing falls
back silently to a reference path; ``import pyvi`` and everything that needs none of it (the
targets, HMC, k-NN, the planar flow's and the VAE likelihoods' reference implementations) work
without it.
"""

from pyvi._backend import require

_C = require("torch_ops")  # loads pyvi._C once: that registers every op's schema and kernels

from pyvi.ops import (  # noqa: E402  (each module registers its op's fake kernels)
    adam_update,
    banana,
    binarize_rows,
    bound_gradients,
    coupling,
    dense_linear,
    gaussian_latent,
    planar,
    sparse_linear,
    vae_likelihood,
)
from pyvi.ops.banana import banana_log_joint  # noqa: E402

__all__ = [
    "banana_log_joint",
    "adam_update",
    "binarize_rows",
    "bound_gradients",
    "banana",
    "planar",
    "coupling",
    "vae_likelihood",
    "sparse_linear",
    "dense_linear",
    "gaussian_latent",
]
