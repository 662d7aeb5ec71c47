"""Command-line argument types and the parser class of ``pyvi``: a bad value is one line on stderr, exit 2.

Each type checks its range when the command line is parsed, before any work starts, with a
message naming the value; the parser prints ``pyvi <command>: error: <message>`` (one line, the
usage is one ``--help`` away) instead of argparse's usage block. Nothing here imports torch, so
building the parser (``pyvi --help``) stays fast.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["Parser", "positive_int", "seed", "positive_float", "device"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``<prog>: error: <message> (see <prog> --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An integer >= 1 (counts of steps, epochs, threads, images)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**64)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**64), got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**64), got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (whether that CUDA device exists is checked before the work)."""
    kind, _, index = text.partition(":")
    if text == "cpu" or (kind == "cuda" and (not index or index.isdigit())):
        return text
    raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
