"""MCMC refinement of variational samples (Problem 1 made executable).

Each sample of q starts its own HMC chain; after t transitions the samples are distributed as
q_t = q T^t, and Problem 1 says KL(q_t || p) is non-increasing in t when T satisfies detailed
balance with p. HMC with a fixed step size and path length and no adaptation does (leapfrog is
volume-preserving and reversible; the Metropolis step corrects the energy error), so no adaptation
is done here.

References:
    Salimans, Kingma & Welling, "Markov Chain Monte Carlo and Variational Inference: Bridging the
    Gap", ICML 2015, arXiv:1410.6460.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pyvi import hmc
from pyvi._validate import as_float_array, count

__all__ = ["mcmc_refine", "Refinement"]


class Refinement(NamedTuple):
    """Samples after each transition.

    Attributes:
        samples: ``(num_transitions + 1, n, dim)``; index 0 is the input, index t the samples after
            t transitions.
        accept_prob: ``(num_transitions, n)`` acceptance probability of each transition.
    """

    samples: np.ndarray
    accept_prob: np.ndarray


def mcmc_refine(samples, target, num_transitions: int, step_size: float, num_steps: int, seed: int = 0,
                backend: str = "cpp", num_threads: int | None = None) -> Refinement:
    """Moves every sample through ``num_transitions`` HMC transitions, each sample its own chain.

    Args:
        samples: ``(n, dim)`` draws from q (e.g. a trained flow).
        target: the HMC target p (see :func:`pyvi.hmc.sample`).
        num_transitions: T >= 0.
        step_size, num_steps: the fixed HMC kernel (no adaptation, so detailed balance holds).
        seed: random streams (seed, i) for sample i.
        backend: ``"cpp"``, ``"numba"`` or ``"numpy"``.

    Returns:
        A :class:`Refinement`.

    Example:
        >>> from pyvi.targets import Banana
        >>> banana = Banana.default()
        >>> refined = mcmc_refine(banana.sample_exact(100, seed=0), banana, 3, 0.05, 10)
        >>> refined.samples.shape, refined.accept_prob.shape
        ((4, 100, 2), (3, 100))
    """
    samples = as_float_array(samples, "samples", ndim=2)
    num_transitions = count(num_transitions, "num_transitions")
    if samples.shape[0] < 1:
        raise ValueError("samples must hold at least one point")
    if num_transitions == 0:  # nothing to run (hmc.sample keeps at least one draw); checked alike
        hmc.sample(target, samples, num_samples=1, num_warmup=0, step_size=step_size, num_steps=num_steps,
                   num_chains=samples.shape[0], adapt_step_size=False, seed=seed, backend=backend,
                   num_threads=num_threads, warn=False)
        return Refinement(samples[None].copy(), np.zeros((0, samples.shape[0])))
    # Each sample is a chain of a few transitions from its own start, with no warm-up: R-hat and
    # ESS say nothing about such chains, so hmc.sample's checks are off.
    result = hmc.sample(target, samples, num_samples=num_transitions, num_warmup=0, step_size=step_size,
                        num_steps=num_steps, num_chains=samples.shape[0], adapt_step_size=False, seed=seed,
                        backend=backend, num_threads=num_threads, warn=False)
    trajectory = np.concatenate([samples[None], result.samples.transpose(1, 0, 2)], axis=0)
    return Refinement(trajectory, result.accept_prob.T.copy())
