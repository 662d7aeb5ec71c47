"""The ``pyvi`` command line (also ``python -m pyvi``).

Subcommands:
    pyvi report --out DIR      the whole problem set (Problems 1-4) into DIR/index.html
    pyvi banana --out DIR      Problem 3: planar/NICE/RealNVP flows and HMC on the banana posterior
    pyvi hmc --out DIR         Problem 3.3: HMC on the banana against the exact posterior
    pyvi vae --out DIR         Problem 4: the VAE on MNIST
    pyvi backends              which native backends loaded, and why not
    pyvi --version

A user error (a bad option value, a missing data file, an ``--out`` that cannot be a folder, a
checkpoint that does not fit, a training run that diverged) is one line on stderr,
``pyvi <command>: error: ...``, and exit status 2; Ctrl-C is one line and status 130. Options are
checked and the data, the banana file and a ``--resume`` checkpoint are read before any work
starts, so such an error writes nothing; the output folder is created when the work starts, and
a run that fails after that removes what it created (:mod:`pyvi.app.output`; ``pyvi vae`` keeps
its ``checkpoint.pt``, the last finished epoch, for ``--resume``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyvi import __version__
from pyvi.app import arguments
from pyvi.app.command import run_command
from pyvi.app.output import check_output_folder

__all__ = ["main", "build_parser"]


def _check_banana(args) -> None:
    """The output folder and the banana data file (read now, so a bad file fails before any work)."""
    from pyvi.app.pipeline import banana_from

    check_output_folder(args.out)
    try:
        banana_from(args.data)
    except (OSError, ValueError) as error:
        raise ValueError(f"--data {args.data}: {error}") from error


def _check_report(args) -> None:
    from pyvi.data import mnist

    _check_banana(args)
    for split in ("train", "test"):
        if len(mnist(args.mnist, split)) == 0:
            raise ValueError(f"--mnist {args.mnist}: the {split} split holds no images")


def _cmd_hmc(args, _) -> int:
    from pyvi.app.pipeline import run_hmc

    metrics = run_hmc(Path(args.out), args.data, args.seed, args.backend)
    print(f"wrote {args.out}/hmc.md: long-run R-hat max {max(metrics['long']['rhat']):.4f}, "
          f"{metrics['long']['seconds']:.2f} s")
    return 0


def _write_report(out: Path, title: str, metrics: dict, sections: list[str]) -> None:
    from pyvi.app.report import write_html

    markdown = f"# {title}\n\nProblem Set 4 reproduced by pyvi; every number is in metrics.json.\n\n" + "\n".join(sections)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    (out / "report.md").write_text(markdown)
    write_html(out, title, markdown)
    print(f"wrote {out / 'index.html'}, {out / 'report.md'} and {out / 'metrics.json'}")


def _run_steps(out: Path, steps: list) -> tuple[dict, list[str]]:
    """Runs (title, key, fn) steps with progress lines; returns metrics and the markdown sections."""
    import time

    metrics, sections = {}, []
    started = time.perf_counter()
    for index, (title, key, step) in enumerate(steps, start=1):
        print(f"[{index}/{len(steps)}] {title} ... ({time.perf_counter() - started:.0f} s so far)", flush=True)
        metrics[key] = step()
        section = out / f"{key}.md" if (out / f"{key}.md").exists() else out / key / f"{key}.md"
        sections.append(section.read_text())
    metrics["total_seconds"] = time.perf_counter() - started
    print(f"done in {metrics['total_seconds']:.0f} s", flush=True)
    return metrics, sections


def _banana_steps(args, out: Path, state: dict) -> list:
    from pyvi.app import pipeline

    banana = pipeline.banana_from(args.data)

    def hmc_step():
        state["runs"] = pipeline.hmc_runs(banana, args.seed, args.backend)
        return pipeline.run_hmc(out, args.data, args.seed, args.backend, runs=state["runs"])

    def flows_step():
        result = pipeline.run_banana(out, args.data, args.steps, args.seed, args.backend, runs=state["runs"],
                                     progress=not args.no_progress)
        state["trained"] = result.pop("trained")
        return result

    return [("HMC on the banana posterior (Problem 3.3)", "hmc", hmc_step),
            ("normalizing flows on the banana (Problem 3)", "flows", flows_step)]


def _cmd_banana(args, _) -> int:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    metrics, sections = _run_steps(out, _banana_steps(args, out, {}))
    _write_report(out, "pyvi: Problem 3, the banana posterior", metrics, sections)
    return 0


def _cmd_report(args, _) -> int:
    import torch

    from pyvi.app import pipeline

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    state: dict = {}
    banana = pipeline.banana_from(args.data)

    def vae_step():
        state["vae"] = pipeline.run_vae(out / "vae", args.mnist, args.vae_epochs, args.seed, args.threads,
                                        progress=not args.no_progress, eval_images=args.vae_eval_images)
        return state["vae"]

    steps = _banana_steps(args, out, state) + [
        ("VAE on MNIST (Problem 4)", "vae", vae_step),
        ("MCMC refinement of the flows (Problem 1)", "refine",
         lambda: pipeline.run_refinement(out, banana, state["trained"], seed=args.seed)),
        ("importance-weighted bounds (Problem 2)", "bounds",
         lambda: pipeline.run_bounds(out, banana, state["trained"], state["vae"], seed=args.seed)),
        ("quick speed table", "bench", lambda: pipeline.run_quick_bench(out, banana)),
    ]
    metrics, sections = _run_steps(out, steps)
    _write_report(out, "pyvi report", metrics, sections)
    return 0


def _cmd_backends(args, _) -> int:
    from pyvi import backends

    for name, status in backends().items():
        print(f"{name:10s} {'yes' if status['available'] else 'no ':3s}  {status['detail']}")
    return 0


def build_parser() -> arguments.Parser:
    parser = arguments.Parser(prog="pyvi", description="Variational inference and MCMC, compiled.")
    parser.add_argument("--version", action="version", version=f"pyvi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    common = arguments.Parser(add_help=False)
    common.add_argument("--out", required=True, help="output folder (created when the work starts)")
    common.add_argument("--data", default=None, help="banana data .npy (default: the embedded simulated set)")
    common.add_argument("--seed", type=arguments.seed, default=0, help="in [0, 2**64) (default 0)")
    common.add_argument("--backend", default="cpp", choices=("cpp", "numba", "numpy"), help="HMC backend")

    pipeline_options = arguments.Parser(add_help=False)
    pipeline_options.add_argument("--steps", type=arguments.positive_int, default=None,
                                  help="flow training steps (default: pyvi.vi.fit's)")
    pipeline_options.add_argument("--threads", type=arguments.positive_int, default=1,
                                  help="torch CPU threads (default 1)")
    pipeline_options.add_argument("--no-progress", action="store_true", help="no progress bars")

    report = commands.add_parser("report", parents=[common, pipeline_options],
                                 help="the whole problem set: index.html, report.md, metrics.json")
    report.add_argument("--mnist", default="embedded", help="'embedded' or a torchvision-layout MNIST folder")
    report.add_argument("--vae-epochs", type=arguments.positive_int, default=100)
    report.add_argument("--vae-eval-images", type=arguments.positive_int, default=1000,
                        help="images per set for VAE curves and IWAE")
    report.set_defaults(handler=_cmd_report, check=_check_report)
    banana_cmd = commands.add_parser("banana", parents=[common, pipeline_options],
                                     help="Problem 3: flows and HMC on the banana posterior")
    banana_cmd.set_defaults(handler=_cmd_banana, check=_check_banana)
    hmc_cmd = commands.add_parser("hmc", parents=[common], help="HMC on the banana (Problem 3.3)")
    hmc_cmd.set_defaults(handler=_cmd_hmc, check=_check_banana)
    from pyvi.app import vae_cli

    vae_cli.as_command(commands.add_parser("vae", help="train the VAE on MNIST (Problem 4)"))
    backends_cmd = commands.add_parser("backends", help="which native backends loaded")
    backends_cmd.set_defaults(handler=_cmd_backends, check=lambda args: None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit status (0, 2 for a user error, 130 on Ctrl-C)."""
    return run_command(build_parser().parse_args(argv))  # a bad option value exits in the parser: one line, status 2


if __name__ == "__main__":
    sys.exit(main())
