"""Runs one parsed command of the ``pyvi`` command line under its error contract (see
:mod:`pyvi.app.cli`): a user error is one line on stderr and exit status 2, Ctrl-C one line and
status 130, and a command with an output folder runs inside :func:`pyvi.app.output.output_folder`.

Both entry points use it: ``pyvi`` (:mod:`pyvi.app.cli`) and ``pyvi vae`` run on its own
(:func:`pyvi.app.vae_cli.main`), so that neither imports the other's module.
"""

from __future__ import annotations

import argparse
import sys

from pyvi.app.output import output_folder

__all__ = ["run_command", "USER_ERRORS"]

#: Exceptions reported as one line with exit status 2 (FloatingPointError: a VAE run that diverged).
USER_ERRORS = (ValueError, TypeError, OSError, ImportError, FloatingPointError)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def run_command(args: argparse.Namespace) -> int:
    """Runs ``args.handler(args, args.check(args))`` for the command ``args.command``, in the
    output folder ``args.out`` when it has one (keeping ``args.keep`` if the run fails); returns
    its exit status, 2 for a user error, 130 on Ctrl-C."""
    prog = f"pyvi {args.command}"
    out = getattr(args, "out", None)
    try:
        prepared = args.check(args)
        if out is None:
            return args.handler(args, prepared)
        with output_folder(out, keep=getattr(args, "keep", ())):
            return args.handler(args, prepared)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 2
