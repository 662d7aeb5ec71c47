"""The progress bar of an MCMC run: ``sample(progress=...)`` as the callback the chunked drivers
call between chunks (:mod:`pyvi.hmc.chunks`).

``"auto"`` (the default) draws a tqdm bar on stderr once a run has lasted :data:`AUTO_AFTER`
seconds (a short run shows nothing), ``True`` from the first chunk, ``False`` or ``None`` never; a
callable is called as ``progress(done, total)`` itself. The bar counts iterations of all chains
together (warm-up included): the native backends advance every chain by the same chunk. A bar
started late (``"auto"``) starts at the count reached, and :func:`progress_callback` closes it
however the run ends (an exception, Ctrl-C), so that no half-drawn bar is left behind. A run timed
or logged (the report's) passes ``progress=False``: a bar in a log file stays there as text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

__all__ = ["as_progress", "progress_callback", "AUTO_AFTER"]

#: Seconds a run must have lasted before ``progress="auto"`` shows a bar.
AUTO_AFTER = 2.0


class _Bar:
    """A callback ``(done, total)`` that draws a tqdm bar (all chains' iterations) and closes it
    when the run is done."""

    def __init__(self, num_chains: int, desc: str, after: float):
        self.num_chains, self.desc, self.after = num_chains, desc, after
        self.started = time.perf_counter()
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if self.after > 0.0 and (time.perf_counter() - self.started < self.after or done >= total):
                return  # "auto": not (yet) a long run
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total * self.num_chains, initial=done * self.num_chains, desc=self.desc, unit="it",
                            leave=False)
        self.bar.update(done * self.num_chains - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Closes the bar, if one was drawn (again: nothing)."""
        if self.bar is not None:
            self.bar.close()


def as_progress(progress, num_chains: int, desc: str) -> Callable[[int, int], object] | None:
    """``progress`` as the drivers' callback (or None): see the module's docstring."""
    if progress is None or progress is False:
        return None
    if progress is True or (isinstance(progress, str) and progress == "auto"):
        return _Bar(num_chains, desc, 0.0 if progress is True else AUTO_AFTER)
    if callable(progress):
        return progress
    raise TypeError(f"progress must be callable (done, total), a bool, 'auto' or None, got {progress!r}")


@contextlib.contextmanager
def progress_callback(progress, num_chains: int, desc: str) -> Iterator[Callable[[int, int], object] | None]:
    """:func:`as_progress` for the length of a run: a bar it draws is closed when the ``with``
    block ends, by an exception too (a run stopped by a user's error or Ctrl-C)."""
    callback = as_progress(progress, num_chains, desc)
    try:
        yield callback
    finally:
        if isinstance(callback, _Bar):
            callback.close()
