"""The report pipeline: each ``run_*`` reproduces one part of the problem set into a folder and
returns its numbers (JSON-ready); each also writes a markdown section (``<part>.md``) beside its
figures, which ``pyvi report`` stitches into ``report.md`` and ``index.html``.
"""

from pyvi.app.pipeline.bench import run_quick_bench
from pyvi.app.pipeline.flows import run_banana
from pyvi.app.pipeline.hmc import banana_from, hmc_runs, run_hmc
from pyvi.app.pipeline.theory import run_bounds, run_refinement
from pyvi.app.pipeline.vae import run_vae

__all__ = ["banana_from", "hmc_runs", "run_banana", "run_bounds", "run_hmc", "run_quick_bench", "run_refinement", "run_vae"]
