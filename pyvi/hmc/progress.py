"""The progress bar of an MCMC run: ``sample(progress=...)`` as the callback the chunked drivers
call between chunks (:mod:`pyvi.hmc.chunks`).

``"auto"`` (the default) draws a tqdm bar on stderr once a run has lasted :data:`AUTO_AFTER`
seconds (a short run shows nothing), ``True`` from the first chunk, ``False`` or ``None`` never; a
callable is called as ``progress(done, total)`` itself. The bar counts iterations of all chains
together (warm-up included): the native backends advance every chain by the same chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["as_progress", "AUTO_AFTER"]

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

            self.bar = tqdm(total=total * self.num_chains, desc=self.desc, unit="it", leave=False)
        self.bar.update(done * self.num_chains - self.bar.n)
        if done >= total:
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
