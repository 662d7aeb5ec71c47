"""The VAE of Problem 4 with fused likelihood ops: model, likelihoods, training and its CLI.

- :class:`VAE` (``pyvi.vae.model``): the problem's architecture, ``elbo``, ``iwae_bound``,
  ``encode``, ``decode``, ``sample``.
- ``pyvi.vae.likelihood``: Bernoulli / Gaussian log p(x | z), fused custom op or torch reference,
  and the counter-based dynamic binarisation.
- ``pyvi.vae.sparse_linear``: a linear layer summing over the nonzero inputs (the encoder's first
  layer on binary digits, the decoder's first layer on its 2-D input); ``pyvi.vae.latent``: the
  posterior heads, reparameterised sample and analytic KL in one op; ``pyvi.vae.dense_linear``:
  the decoder's output layer on oneDNN's matmul.
- ``pyvi.vae.train``: the training loop with exact resume; ``pyvi.vae.cli``: ``pyvi vae``.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
"""

from pyvi.vae.likelihood import bernoulli_log_likelihood, binarize, gaussian_log_likelihood
from pyvi.vae.model import VAE

__all__ = ["VAE", "bernoulli_log_likelihood", "binarize", "gaussian_log_likelihood"]
