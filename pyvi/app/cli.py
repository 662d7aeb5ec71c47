"""The ``pyvi`` command line (also ``python -m pyvi``).

Subcommands:
    pyvi report --out DIR      the whole problem set (Problems 1-4) into DIR/index.html
    pyvi banana --out DIR      Problem 3: planar/NICE/RealNVP flows and HMC on the banana posterior
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


def _cmd_banana(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, sections = _run_steps(out, _banana_steps(args, out, {}))
    _write_report(out, "pyvi: Problem 3, the banana posterior", metrics, sections)
    return 0


def _cmd_report(args) -> int:
    import torch

    from pyvi.app import pipeline

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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


def _cmd_vae(args) -> int:
    from pyvi.app import vae_cli

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

    pipeline_options = argparse.ArgumentParser(add_help=False)
    pipeline_options.add_argument("--steps", type=int, default=None, help="flow training steps (default: pyvi.vi.fit's)")
    pipeline_options.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    pipeline_options.add_argument("--no-progress", action="store_true", help="no progress bars")

    report = commands.add_parser("report", parents=[common, pipeline_options],
                                 help="the whole problem set: index.html, report.md, metrics.json")
    report.add_argument("--mnist", default="embedded", help="'embedded' or a torchvision-layout MNIST folder")
    report.add_argument("--vae-epochs", type=int, default=100)
    report.add_argument("--vae-eval-images", type=int, default=1000, help="images per set for VAE curves and IWAE")
    report.set_defaults(handler=_cmd_report)
    banana_cmd = commands.add_parser("banana", parents=[common, pipeline_options],
                                     help="Problem 3: flows and HMC on the banana posterior")
    banana_cmd.set_defaults(handler=_cmd_banana)
    hmc_cmd = commands.add_parser("hmc", parents=[common], help="HMC on the banana (Problem 3.3)")
    hmc_cmd.set_defaults(handler=_cmd_hmc)
    from pyvi.app import vae_cli

    vae_cmd = vae_cli.add_arguments(commands.add_parser("vae", help="train the VAE on MNIST (Problem 4)"))
    vae_cmd.set_defaults(handler=_cmd_vae)
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
