"""The error every process of a torchrun run raises when another one failed (its own module so that
the shared-memory modules below :mod:`pyvi.distributed` can raise it; exported there)."""

from __future__ import annotations

__all__ = ["RankFailedError"]


class RankFailedError(RuntimeError):
    """Another process of the run failed; this one stops with its error.

    Attributes:
        rank: the failed process's rank (None when its error could not be read).
        error_type: the name of its exception's type.
    """

    def __init__(self, message: str, rank: int | None = None, error_type: str | None = None):
        super().__init__(message)
        self.rank = rank
        self.error_type = error_type
