"""The ``pyvi`` command line (also ``python -m pyvi``).

Subcommands:
    pyvi report --out DIR      everything pyvi can reproduce of the problem set, into DIR
    pyvi hmc --out DIR         Problem 3.3: HMC on the banana against the exact posterior
    pyvi vae --out DIR         Problem 4: the VAE on MNIST
    pyvi backends              which native backends loaded, and why not
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_hmc(args) -> int:
    from pyvi.pipeline import run_hmc

    metrics = run_hmc(Path(args.out), args.data, args.seed, args.backend)
    print(f"wrote {args.out}/hmc.md: long-run R-hat max {max(metrics['long']['rhat']):.4f}, "
          f"{metrics['long']['seconds']:.2f} s")
    return 0


def _cmd_report(args) -> int:
    from pyvi import pipeline
    from pyvi.report import write_html

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = [
        ("HMC on the banana posterior", "hmc", lambda: pipeline.run_hmc(out, args.data, args.seed, args.backend)),
        ("VAE on MNIST", "vae", lambda: pipeline.run_vae(out / "vae", args.mnist, args.vae_epochs, args.seed,
                                                           args.threads, progress=not args.no_progress)),
    ]
    metrics, sections = {}, []
    for index, (title, key, step) in enumerate(steps, start=1):
        print(f"[{index}/{len(steps)}] {title} ...", flush=True)
        metrics[key] = step()
        section = out / f"{key}.md" if (out / f"{key}.md").exists() else out / key / f"{key}.md"
        sections.append(section.read_text())
    markdown = "# pyvi report\n\nProblem Set 4 reproduced by pyvi; numbers in metrics.json.\n\n" + "\n".join(sections)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    (out / "report.md").write_text(markdown)
    write_html(out, "pyvi report", markdown)
    print(f"wrote {out / 'index.html'}, {out / 'report.md'} and {out / 'metrics.json'}")
    return 0


def _cmd_vae(args) -> int:
    from pyvi.vae import cli as vae_cli

    metrics = vae_cli.run(args)
    print(f"wrote {args.out}: test ELBO {metrics['final_test_elbo']:.2f}, "
          f"IWAE {metrics['iwae_test_log_likelihood']}")
    return 0


def _cmd_backends(args) -> int:
    from pyvi import backends

    for name, status in backends().items():
        print(f"{name:10s} {'yes' if status['available'] else 'no ':3s}  {status['detail']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyvi", description="Variational inference and MCMC, compiled.")
    commands = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="output folder (created)")
    common.add_argument("--data", default=None, help="banana data .npy (default: the embedded simulated set)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--backend", default="cpp", choices=("cpp", "numba", "numpy"), help="HMC backend")

    report = commands.add_parser("report", parents=[common],
                                 help="run everything, write index.html, report.md and metrics.json")
    report.add_argument("--mnist", default="embedded", help="'embedded' or a torchvision-layout MNIST folder")
    report.add_argument("--vae-epochs", type=int, default=100)
    report.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")
    report.set_defaults(handler=_cmd_report)
    from pyvi.vae import cli as vae_cli

    vae_cmd = vae_cli.add_arguments(commands.add_parser("vae", help="train the VAE on MNIST (Problem 4)"))
    vae_cmd.set_defaults(handler=_cmd_vae)
    hmc_cmd = commands.add_parser("hmc", parents=[common], help="HMC on the banana (Problem 3.3)")
    hmc_cmd.set_defaults(handler=_cmd_hmc)
    backends_cmd = commands.add_parser("backends", help="which native backends loaded")
    backends_cmd.set_defaults(handler=_cmd_backends)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"pyvi {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
