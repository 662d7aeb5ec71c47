"""Figures for the reports: samples over the exact banana contours, HMC traces.

Uses matplotlib's Agg backend (files only, no display needed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["banana_contours", "samples_over_posterior", "hmc_traces", "elbo_curves", "series_with_errors"]

LIMITS = ((-2.5, 2.5), (-2.5, 2.5))


def banana_contours(ax, banana, limits=LIMITS, num: int = 200) -> None:
    """Contours of the exact posterior density at levels holding ~50/90/99% of the mass."""
    grid1, grid2, density = banana.density_grid(limits[0], limits[1], num)
    cell = (grid1[0, 1] - grid1[0, 0]) * (grid2[1, 0] - grid2[0, 0])
    flat = np.sort(density.ravel())[::-1]
    mass = np.cumsum(flat) * cell
    levels = sorted({float(flat[min(np.searchsorted(mass, q), flat.size - 1)]) for q in (0.99, 0.9, 0.5)})
    ax.contour(grid1, grid2, density, levels=levels, colors="tab:red", linewidths=1.0, alpha=0.8)


def samples_over_posterior(panels: dict[str, np.ndarray], banana, path: str | Path, limits=LIMITS) -> Path:
    """One scatter panel per entry of ``panels`` (title -> (n, 2) samples), each over the exact
    posterior contours. Returns the written path."""
    count = len(panels)
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 4.2), squeeze=False, sharex=True, sharey=True)
    for ax, (title, samples) in zip(axes[0], panels.items()):
        ax.scatter(samples[:, 0], samples[:, 1], s=3, c="black", alpha=0.6, linewidths=0)
        banana_contours(ax, banana, limits)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_xlabel(r"$\theta_1$")
    axes[0][0].set_ylabel(r"$\theta_2$")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def hmc_traces(samples: np.ndarray, path: str | Path, names=(r"$\theta_1$", r"$\theta_2$"),
               title: str | None = None) -> Path:
    """Trace plot per dimension, one line per chain (a legend names them), for samples of shape
    (chains, draws, dim); ``title`` above (default: the chain and draw counts)."""
    chains, draws, dim = samples.shape
    fig, axes = plt.subplots(dim, 1, figsize=(8, 1.8 * dim + 0.5), sharex=True, squeeze=False)
    for k in range(dim):
        for index, chain in enumerate(samples[:, :, k]):
            axes[k][0].plot(chain, linewidth=0.5, alpha=0.8, label=f"chain {index + 1}")
        axes[k][0].set_ylabel(names[k] if k < len(names) else f"x{k}")
    axes[-1][0].set_xlabel("draw")
    legend = axes[0][0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=min(chains, 8),
                               frameon=False, borderaxespad=0.1)
    for handle in legend.get_lines():
        handle.set_linewidth(2.0)
    fig.suptitle(title or f"HMC traces: {chains} chain{'s' if chains != 1 else ''} x {draws:,} draws", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def elbo_curves(histories: dict[str, np.ndarray], log_evidence: float, path: str | Path, window: int = 100) -> Path:
    """Per-step ELBO estimates of each flow (a running mean over ``window`` steps, or over the whole
    trace when it is shorter, drawn over the raw trace), with the exact log p(y) as a line."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, trace in histories.items():
        trace = np.asarray(trace, dtype=float)
        if trace.size == 0:
            continue
        steps = np.arange(1, trace.size + 1)
        ax.plot(steps, trace, linewidth=0.4, alpha=0.25)
        width = min(window, trace.size)
        kernel = np.ones(width) / width
        filled = np.nan_to_num(trace, nan=np.nanmean(trace)) if np.isfinite(trace).any() else trace
        smooth = np.convolve(filled, kernel, mode="valid")
        ax.plot(steps[width - 1:], smooth, linewidth=1.4, label=name, color=ax.lines[-1].get_color())
    ax.axhline(log_evidence, color="black", linestyle="--", linewidth=1, label=f"log p(y) = {log_evidence:.3f}")
    ax.set_ylim(log_evidence - 8, log_evidence + 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("ELBO estimate (batch of 256)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def series_with_errors(series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path, xlabel: str,
                       ylabel: str, title: str, logx: bool = False, hline: tuple[float, str] | None = None) -> Path:
    """Lines with +-2 standard-error bars: ``series[name] = (x, value, standard_error)``."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for name, (x, value, error) in series.items():
        ax.errorbar(x, value, yerr=2 * np.asarray(error), marker="o", markersize=3, capsize=3, label=name)
    if hline is not None:
        ax.axhline(hline[0], color="black", linestyle="--", linewidth=1, label=hline[1])
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
