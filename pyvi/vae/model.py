"""The VAE of Problem 4: Gaussian prior, one-hidden-layer MLP encoder and decoder, 2-D latent.

q(z | x) = N(mu(x), diag exp(log_var(x))), p(z) = N(0, I), and p(x | z) Bernoulli with logits
decoder(z) (the problem's sigmoid outputs for binary x) or, as in the homework, Gaussian with mean
decoder(z) and one learned log-scale. The ELBO uses one reparameterised sample and the analytic
KL; the IWAE bound uses K samples and a log-mean-exp of the importance weights.

References:
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, arXiv:1509.00519.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyvi._validate import choice, count
from pyvi.vae.dense_linear import dense_linear
from pyvi.vae.latent import gaussian_latent
from pyvi.vae.likelihood import bernoulli_log_likelihood, gaussian_log_likelihood
from pyvi.vae.sparse_linear import in_major, sparse_linear

__all__ = ["VAE"]

_LOG_2PI = math.log(2 * math.pi)
#: Decoder outputs per IWAE chunk (samples x images x pixels): about 64 MB in float32.
_CHUNK_ELEMENTS = 1 << 24


def _share(share, rows: int) -> tuple[int, int]:
    """``(first_row, batch_rows)`` checked against the ``rows`` given; ``(0, rows)`` for None."""
    if share is None:
        return 0, rows
    first_row, batch_rows = (count(value, name) for value, name in zip(share, ("share[0]", "share[1]")))
    if first_row + rows > batch_rows:
        raise ValueError(f"share=({first_row}, {batch_rows}) cannot hold {rows} rows starting at row {first_row}")
    return first_row, batch_rows


class VAE(nn.Module):
    """Variational autoencoder with MLP encoder/decoder (one hidden ReLU layer each).

    Args:
        input_dim: pixels per image (784 for MNIST).
        hidden: hidden units of both networks (512 in the problem).
        latent_dim: size of z (2 in the problem).
        likelihood: ``"bernoulli"`` (logits out, binary x) or ``"gaussian"`` (mean out and a
            learned log-scale, the homework's choice).
        impl: ``"fused"`` (pyvi._C's custom ops: the likelihood, the encoder's first layer as a
            sum over the nonzero pixels, :func:`pyvi.vae.sparse_linear.sparse_linear`, and the
            posterior heads with reparameterisation and KL, :func:`pyvi.vae.latent.gaussian_latent`,
            and the decoder's output layer on oneDNN, :func:`pyvi.vae.dense_linear.dense_linear`)
            or ``"reference"`` (plain torch).

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = VAE(impl="reference")
        >>> x = (torch.rand(5, 784) < 0.5).float()
        >>> model.elbo(x).shape, model.iwae_bound(x, 10).shape
        (torch.Size([5]), torch.Size([5]))
    """

    def __init__(
        self,
        input_dim: int = 784,
        hidden: int = 512,
        latent_dim: int = 2,
        likelihood: str = "bernoulli",
        impl: str = "fused",
    ):
        super().__init__()
        self.input_dim = count(input_dim, "input_dim", minimum=1)
        self.hidden = count(hidden, "hidden", minimum=1)
        self.latent_dim = count(latent_dim, "latent_dim", minimum=1)
        self.likelihood = choice(likelihood, "likelihood", ("bernoulli", "gaussian"))
        self.impl = choice(impl, "impl", ("fused", "reference"))
        self.encoder = nn.Sequential(nn.Linear(self.input_dim, self.hidden), nn.ReLU())
        self.fc_mu = nn.Linear(self.hidden, self.latent_dim)
        self.fc_log_var = nn.Linear(self.hidden, self.latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(self.latent_dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.input_dim)
        )
        if self.impl == "fused":
            # The same initial values, stored the way the sparse kernel reads them (shapes unchanged).
            for layer in (self.encoder[0], self.decoder[0]):
                layer.weight = nn.Parameter(in_major(layer.weight.detach()))
        if self.likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(()))

    def config(self) -> dict:
        """The constructor arguments (saved in checkpoints)."""
        return {"input_dim": self.input_dim, "hidden": self.hidden, "latent_dim": self.latent_dim,
                "likelihood": self.likelihood, "impl": self.impl}

    def _check_x(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, {self.input_dim}), got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(z | x), each ``(B, latent_dim)``."""
        self._check_x(x)
        h = self._hidden(x)
        return self.fc_mu(h), self.fc_log_var(h)

    #: How the fused model runs its three linear layers on CUDA tensors: ``"cublas"`` (torch's GEMMs;
    #: on an H200 they beat the custom sparse/dense kernels at batch 128, see bench/bench_vae.py's GPU
    #: rows) or ``"custom"`` (the same ops as on the CPU). The likelihood and latent ops stay fused.
    cuda_linear: str = "cublas"

    def _linear(self, x: torch.Tensor, layer: nn.Linear, relu: bool, custom) -> torch.Tensor:
        if x.is_cuda and self.cuda_linear == "cublas":
            out = F.linear(x, layer.weight, layer.bias)
            return torch.relu(out) if relu else out
        return custom()

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "fused":
            first = self.encoder[0]
            return self._linear(x, first, True, lambda: sparse_linear(x, first.weight, first.bias, relu=True))
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder outputs for z ``(..., latent_dim)``: logits (Bernoulli) or means (Gaussian)."""
        if self.impl == "fused":
            # The first layer has latent_dim = 2 inputs: as a sum over them it skips BLAS's slow
            # two-column GEMMs in the backward pass, and fuses the ReLU. The output layer's three
            # GEMMs run on oneDNN (pyvi.vae.dense_linear).
            first, last = self.decoder[0], self.decoder[2]
            flat = z.reshape(-1, self.latent_dim)
            h = self._linear(flat, first, True, lambda: sparse_linear(flat, first.weight, first.bias, relu=True))
            out = self._linear(h, last, False, lambda: dense_linear(h, last.weight, last.bias))
            return out.reshape(*z.shape[:-1], self.input_dim)
        return self.decoder(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] in pixel space: sigmoid(logits) or the Gaussian mean."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """log p(x | z) summed over pixels for decoder outputs ``(B, D)`` or ``(S, B, D)``."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x, seed=seed, impl=self.impl)
        return gaussian_log_likelihood(out, x, self.log_scale, seed=seed, impl=self.impl)

    def elbo(self, x: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None,
             share: tuple[int, int] | None = None) -> torch.Tensor:
        """One-sample ELBO per image, ``(B,)``: log p(x | z) - KL(q(z | x) || p(z)), z ~ q reparameterised.

        Args:
            x: ``(B, input_dim)`` data (gray levels binarised on the fly when ``seed`` is given).
            seed: dynamic binarisation seed for the likelihood (the encoder then sees the same bits).
            generator: source of the reparameterisation noise (default: torch's global RNG).
            share: ``(first_row, batch_rows)``: x is rows ``first_row ..`` of a batch of
                ``batch_rows`` images (a distributed process's share, :mod:`pyvi.distributed`); the
                noise is drawn for the whole batch and these rows' taken, so the shares' ELBOs are
                the whole batch's.
        """
        self._check_x(x)
        first_row, batch_rows = _share(share, x.shape[0])
        if seed is not None:
            from pyvi.binarize import binarize

            x_in = binarize(x, seed)
        else:
            x_in = x
        self._check_x(x_in)
        h = self._hidden(x_in)
        parameter = self.fc_mu.weight
        eps = torch.randn((batch_rows, self.latent_dim), generator=generator, device=parameter.device,
                          dtype=parameter.dtype)[first_row:first_row + x.shape[0]]
        # z = mu + sigma eps and the analytic KL(N(mu, sigma^2) || N(0, 1)) summed over latent dimensions.
        z, kl, _, _ = gaussian_latent(h, self.fc_mu.weight, self.fc_mu.bias, self.fc_log_var.weight,
                                      self.fc_log_var.bias, eps, impl=self.impl)
        return self.log_likelihood(self.decode(z), x, seed=seed) - kl

    @torch.no_grad()
    def iwae_bound(
        self,
        x: torch.Tensor,
        num_samples: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        share: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """The importance-weighted bound L_K per image, ``(B,)`` (Burda et al. 2016).

        L_K = log (1/K) sum_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x): L_1 is the ELBO estimator,
        L_K increases with K to log p(x). The K samples run in chunks so that K = 5,000 fits in
        memory; only the (K, B) log-weights are kept.

        Args:
            x: ``(B, input_dim)``.
            num_samples: K >= 1.
            seed: dynamic binarisation seed (the same binary x for all K samples).
            generator: source of the z draws.
            chunk_size: samples per chunk (default: about 16M decoder outputs per chunk).
            share: ``(first_row, batch_rows)``, as for :meth:`elbo`: the z draws (and the default
                chunks) are the whole batch's.
        """
        self._check_x(x)
        first_row, batch_rows = _share(share, x.shape[0])
        num_samples = count(num_samples, "num_samples", minimum=1)
        if chunk_size is None:
            chunk_size = max(1, _CHUNK_ELEMENTS // max(1, batch_rows * self.input_dim))
        chunk_size = count(chunk_size, "chunk_size", minimum=1)
        if seed is not None:
            from pyvi.binarize import binarize

            x_in = binarize(x, seed)
        else:
            x_in = x
        mu, log_var = self.encode(x_in)
        std = torch.exp(0.5 * log_var)
        log_weights = []
        for start in range(0, num_samples, chunk_size):
            k = min(chunk_size, num_samples - start)
            eps = torch.randn((k, batch_rows, mu.shape[1]), generator=generator, device=mu.device,
                              dtype=mu.dtype)[:, first_row:first_row + mu.shape[0]]
            z = mu + std * eps
            log_prior = -0.5 * (z.square() + _LOG_2PI).sum(-1)
            log_q = -0.5 * (eps.square() + _LOG_2PI + log_var).sum(-1)
            log_weights.append(self.log_likelihood(self.decode(z), x, seed=seed) + log_prior - log_q)
        log_weights = torch.cat(log_weights)
        return torch.logsumexp(log_weights, dim=0) - math.log(num_samples)

    @torch.no_grad()
    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """E[x | z] for z ~ p(z): ``(num_samples, input_dim)`` images in pixel space."""
        num_samples = count(num_samples, "num_samples", minimum=1)
        parameter = self.fc_mu.weight
        z = torch.randn((num_samples, self.latent_dim), generator=generator, device=parameter.device,
                        dtype=parameter.dtype)
        return self.mean_image(z)
