"""Run a training step many times through CUDA graphs: warm up eagerly, capture, replay.

A training step at pyvi's sizes is a dozen small kernels; launched one by one from Python each costs
~10-30 us of host time, far more than its GPU time. Captured once into a CUDA graph
(``torch.cuda.CUDAGraph``), ``steps_per_graph`` steps replay with one host call. The step must be
capture-safe: fixed shapes, every tensor it reads or writes allocated before the capture or inside
it (never freed and re-made between replays), no host synchronisation (no ``.item()``, no
``bool(tensor)``), random numbers only from the generators passed here (their state advances on
every replay exactly as eager calls would advance it, so a seeded run gives the same draws).

References:
    PyTorch, "CUDA Graphs" (torch.cuda.graph, whole-network capture);
    NVIDIA, "CUDA C++ Programming Guide", Sec. "CUDA Graphs".
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["GraphedSteps", "run_steps", "WARMUP_STEPS"]

#: Steps run eagerly on a side stream before the first capture (lazy initialisation of handles and
#: of the caching allocator happens outside the graph, as torch's documentation asks).
WARMUP_STEPS = 3


class GraphedSteps:
    """Runs a capture-safe ``step()`` again and again, keeping its graphs between calls of :meth:`run`.

    Args:
        step: one training step; capture-safe (see the module docstring).
        capture: replay captured graphs (``False``: plain eager calls, the fallback and the reference).
        generators: every ``torch.Generator`` the step draws from (CUDA generators; registered with each
            graph so that replays advance them).
        steps_per_graph: steps captured in one graph (a remainder gets a graph of its own).
    """

    def __init__(self, step: Callable[[], None], *, capture: bool, generators: tuple[torch.Generator, ...] = (),
                 steps_per_graph: int = 16):
        self.step, self.capture, self.generators = step, capture, generators
        self.steps_per_graph = steps_per_graph
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.warm = False

    def run(self, num_steps: int, after: Callable[[int], None] | None = None) -> None:
        """``num_steps`` steps on the current CUDA device (or eagerly anywhere when not capturing).

        ``after(done)`` is called with the steps done so far after each eager step or graph replay
        (progress bars; it should not synchronise on every call).
        """
        done = 0
        if not self.capture:
            for done in range(1, num_steps + 1):
                self.step()
                if after is not None:
                    after(done)
            return
        if not self.warm:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for done in range(1, min(WARMUP_STEPS, num_steps) + 1):
                    self.step()
                    if after is not None:
                        after(done)
            torch.cuda.current_stream().wait_stream(side)
            self.warm = True
        while done < num_steps:
            size = min(self.steps_per_graph, num_steps - done)
            graph = self.graphs.get(size)
            if graph is None:
                graph = self.graphs[size] = self._capture(size)
            graph.replay()
            done += size
            if after is not None:
                after(done)

    def _capture(self, count: int) -> torch.cuda.CUDAGraph:
        """A graph of ``count`` consecutive steps. Capturing runs nothing: the steps execute at replay."""
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            for _ in range(count):
                self.step()
        return graph


def run_steps(step: Callable[[], None], num_steps: int, *, capture: bool,
              generators: tuple[torch.Generator, ...] = (), steps_per_graph: int = 16,
              after: Callable[[int], None] | None = None) -> None:
    """``num_steps`` calls of ``step()``, through CUDA graphs when ``capture``: a one-off
    :class:`GraphedSteps` (see there)."""
    GraphedSteps(step, capture=capture, generators=generators, steps_per_graph=steps_per_graph).run(num_steps, after)
