"""Export of an MCMC result to ``arviz.InferenceData`` (ArviZ is optional: ``pip install 'pyvi[arviz]'``).

The draws become the ``posterior`` group (one variable, ``(chain, draw, <name>_dim_0)``); the
per-draw statistics the result has become ``sample_stats`` under ArviZ's names (those PyMC and
NumPyro use, which ArviZ's plots and ``bfmi`` read):

=====================  ===================  ==========================================
pyvi field             ArviZ name           meaning
=====================  ===================  ==========================================
``log_prob``           ``lp``               log density at the draw
``accept_prob``        ``acceptance_rate``  Metropolis acceptance probability
``divergent``          ``diverging``        the transition diverged
``num_steps``          ``n_steps``          leapfrog steps taken
``step_size``          ``step_size``        step size (per chain, repeated per draw)
``energy``             ``energy``           Hamiltonian at the draw (NUTS)
``energy_error``       ``energy_error``     H(proposal) - H(start) (NUTS)
``tree_depth``         ``tree_depth``       trajectory doubling count (NUTS)
=====================  ===================  ==========================================

Fields a result lacks are left out. Warm-up draws, when the run saved them as ``warmup_samples``
(and ``warmup_<field>`` for the statistics), go to ``warmup_posterior`` and ``warmup_sample_stats``.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["to_inference_data", "SAMPLE_STATS_NAMES", "import_arviz"]

#: pyvi's per-draw field -> ArviZ's sample_stats name.
SAMPLE_STATS_NAMES = {"log_prob": "lp", "accept_prob": "acceptance_rate", "divergent": "diverging",
                      "num_steps": "n_steps", "step_size": "step_size", "energy": "energy",
                      "energy_error": "energy_error", "tree_depth": "tree_depth"}


def import_arviz():
    """``arviz``, or an ImportError that says how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.23 announces its 1.0 rewrite
            import arviz
    except ImportError as error:
        raise ImportError("to_arviz needs ArviZ, an optional dependency: pip install 'pyvi[arviz]' "
                          "(or pip install arviz)") from error
    return arviz


def _stats(result, prefix: str, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    stats = {}
    for field, name in SAMPLE_STATS_NAMES.items():
        value = getattr(result, prefix + field, None)
        if value is None:
            continue
        value = np.asarray(value)
        if value.shape == shape[:1]:  # per chain (the step size after adaptation): one per draw
            value = np.repeat(value[:, None], shape[1], axis=1)
        if value.shape == shape:
            stats[name] = value
    return stats


def to_inference_data(result, var_name: str = "x"):
    """``result`` (an object with ``samples`` ``(num_chains, num_draws, dim)`` and optional per-draw
    fields, module docstring) as an ``arviz.InferenceData``.

    Args:
        result: e.g. a :class:`pyvi.hmc.HMCResult`.
        var_name: the posterior variable's name.

    Raises:
        ImportError: ArviZ is not installed (the message names the extra).
    """
    arviz = import_arviz()
    samples = np.asarray(result.samples)
    groups = {"posterior": {var_name: samples}, "sample_stats": _stats(result, "", samples.shape[:2])}
    warmup = getattr(result, "warmup_samples", None)
    if warmup is not None:
        warmup = np.asarray(warmup)
        groups["warmup_posterior"] = {var_name: warmup}
        groups["warmup_sample_stats"] = _stats(result, "warmup_", warmup.shape[:2])
    attrs = {"inference_library": "pyvi", "backend": str(getattr(result, "backend", ""))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz.from_dict(**groups, save_warmup=warmup is not None, attrs=attrs)
