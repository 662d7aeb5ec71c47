"""Problem 4's figures for a trained VAE (matplotlib, Agg backend), written by ``pyvi vae``.

- ``elbo_curves.png``: the ELBO on the 1,000 train and test images against the epoch;
- ``real_digits.png`` / ``generated_digits.png``: 10 x 10 tiles of real and generated digits;
- ``latent_scatter.png``: the test set's latent means coloured by label, with a colour bar;
- ``latent_grid.png``: 20 x 20 decoded digits over the scatter's [min, max] of z1 and z2.

The numbers beside them (IWAE estimates, the latent means) come from :mod:`pyvi.vae.evaluate`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pyvi.vae.model import VAE  # noqa: E402

__all__ = ["tiles", "plot_elbo_curves", "plot_tiles", "plot_latent_scatter", "plot_latent_grid"]


def tiles(images: np.ndarray, rows: int, cols: int, side: int = 28) -> np.ndarray:
    """Up to ``rows * cols`` flattened images as one ``(rows * side, cols * side)`` mosaic, row-major;
    cells without an image (a test set of fewer than 100 digits) stay black."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, side * side)
    if len(images) > rows * cols:
        raise ValueError(f"{len(images)} images do not fit {rows} x {cols} tiles")
    images = np.concatenate([images, np.zeros((rows * cols - len(images), side * side), np.float32)])
    images = images.reshape(rows, cols, side, side)
    return images.transpose(0, 2, 1, 3).reshape(rows * side, cols * side)


def plot_elbo_curves(history: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["epoch"], history["train_elbo"], label="train (1,000 images)")
    ax.plot(history["epoch"], history["test_elbo"], label="test (1,000 images)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO (nats per image)")
    ax.set_title("VAE bound on training and test data")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_tiles(images: torch.Tensor | np.ndarray, rows: int, cols: int, title: str, path: Path) -> None:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    fig, ax = plt.subplots(figsize=(cols * 0.5 + 1, rows * 0.5 + 1))
    ax.imshow(np.clip(tiles(images, rows, cols), 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latent_scatter(means: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    points = ax.scatter(means[:, 0], means[:, 1], c=labels.cpu(), cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title("test set: means of q(z | x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@torch.no_grad()
def plot_latent_grid(model: VAE, means: torch.Tensor, path: Path, size: int = 20) -> tuple[list[float], list[float]]:
    """Decode a ``size`` x ``size`` grid over the scatter's [min, max] of z1 (columns, left to right)
    and z2 (rows, top to bottom from max to min, as on the scatter). Returns the two ranges."""
    low, high = means.min(0).values, means.max(0).values
    z1 = torch.linspace(low[0].item(), high[0].item(), size)
    z2 = torch.linspace(high[1].item(), low[1].item(), size)
    grid = torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    parameter = model.fc_mu.weight
    images = model.mean_image(grid.to(parameter.device, parameter.dtype))
    plot_tiles(images, size, size, f"decoded grid: z1 in [{low[0]:.2f}, {high[0]:.2f}], "
               f"z2 in [{low[1]:.2f}, {high[1]:.2f}]", path)
    return [low[0].item(), high[0].item()], [low[1].item(), high[1].item()]
