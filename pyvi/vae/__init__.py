"""The VAE of Problem 4 with fused likelihood ops: model, likelihoods, training, evaluation.

- :class:`VAE` (``pyvi.vae.model``): the problem's architecture, ``elbo``, ``iwae_bound``,
  ``encode``, ``decode``, ``sample``.
- ``pyvi.vae.likelihood``: Bernoulli / Gaussian log p(x | z), fused custom op or torch reference;
  ``binarize``: the counter-based dynamic binarisation (from :mod:`pyvi.binarize`, a layer below
  both this package and :mod:`pyvi.data`).
- ``pyvi.vae.sparse_linear``: a linear layer summing over the nonzero inputs (the encoder's first
  layer on binary digits, the decoder's first layer on its 2-D input); ``pyvi.vae.latent``: the
  posterior heads, reparameterised sample and analytic KL in one op; ``pyvi.vae.dense_linear``:
  the decoder's output layer on oneDNN's matmul.
- ``pyvi.vae.train``: the training loop with exact resume, stopping on non-finite weights;
  ``pyvi.vae.checkpoint``: atomic checkpoint writes and fully checked reads; ``pyvi.vae.evaluate``:
  IWAE estimates of the log-likelihood and the encoder means of a data set.

The ``pyvi vae`` command and its figures are application code: :mod:`pyvi.app.vae_cli` and
:mod:`pyvi.app.vae_plots`.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
"""

import importlib

# Where each public name lives; imported on first use so that ``import pyvi.vae`` stays cheap (it
# does not pay torch's ~1 s import until a name is used).
_EXPORTS = {"VAE": "pyvi.vae.model", "bernoulli_log_likelihood": "pyvi.vae.likelihood",
            "binarize": "pyvi.binarize", "gaussian_log_likelihood": "pyvi.vae.likelihood"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pyvi.vae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
