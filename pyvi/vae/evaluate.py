"""A trained VAE evaluated on a data set: IWAE estimates of the log-likelihood and the encoder means.

Both run without gradients, batch by batch, with the data binarised by a fixed ``seed`` (the same
bits on every call), so an estimate is reproducible. The per-epoch ELBO curves of training use
:func:`pyvi.vae.train.evaluate_elbo`.

References:
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, arXiv:1509.00519.
"""

from __future__ import annotations

import torch

from pyvi import distributed
from pyvi._seeds import derived_seed
from pyvi._validate import count
from pyvi.data import MNISTData
from pyvi.vae.model import VAE

__all__ = ["iwae_log_likelihood", "latent_means"]


@torch.no_grad()
def latent_means(model: VAE, data: MNISTData, *, seed: int, batch_size: int = 1000) -> torch.Tensor:
    """The encoder means mu(x) of every image of ``data`` (binarised with ``seed``), ``(N, latent)``."""
    if len(data) == 0:
        raise ValueError("data must hold at least one image")
    means = [model.encode(data.batch(part, seed=seed))[0] for part in torch.arange(len(data)).split(batch_size)]
    return torch.cat(means).cpu()


@distributed.entry_point
@torch.no_grad()
def iwae_log_likelihood(model: VAE, data: MNISTData, indices: torch.Tensor, num_samples: int, *, seed: int,
                        batch_size: int = 100) -> float:
    """Mean IWAE bound L_K over ``data[indices]`` (a lower bound on the test log-likelihood).

    Under torchrun every process evaluates its rows of each batch (with the bits and z draws the
    whole batch gives them) and the sum is reduced: every process returns the single-process value
    up to the order of the additions. Every process must call it.
    """
    num_samples = count(num_samples, "num_samples", minimum=1)
    if len(indices) == 0:
        raise ValueError("indices must hold at least one image")
    group = distributed.current()
    generator = torch.Generator(device=data.device).manual_seed(derived_seed(seed, num_samples))
    total = 0.0
    for part in indices.split(batch_size):
        if group is None:
            x = data.batch(part, seed=seed)
            total += model.iwae_bound(x, num_samples, generator=generator).sum().item()
            continue
        rows = group.rows(len(part))
        x = data.batch(part[rows.start:rows.stop], seed=seed, first_row=rows.start)
        total += model.iwae_bound(x, num_samples, generator=generator, share=(rows.start, len(part))).sum().item()
    if group is not None:
        total = float(group.all_reduce_sum_(torch.tensor([total], dtype=torch.float64, device=data.device)))
    return total / len(indices)
