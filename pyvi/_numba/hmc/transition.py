"""One static-HMC transition of a group of chains: the kernel ``(rng, state) -> (state, info)``.

Per lane: draw the path length and the momentum, integrate (all lanes together, see
:mod:`pyvi._numba.hmc.leapfrog`), then accept or reject by the energy error. The random numbers
are drawn in a fixed order (path length, momentum, accept uniform), as in
csrc/core/hmc/transition.hpp, so that both backends give the same draws.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), arXiv:1701.02434
    (divergences).
"""

import math

import numba
import numpy as np

from pyvi._numba.hmc.leapfrog import leapfrog
from pyvi._numba.hmc.metric import kinetic_energy, sample_momentum
from pyvi._numba.rng import uniform

__all__ = ["transition"]


@numba.njit(cache=True, inline="always")
def transition(target, settings, rngs, state, proposal, step_size, info, count, lanes):
    """Moves lanes ``0 .. count - 1`` of ``state`` one transition on; writes ``info``.

    Args:
        target: a registered target face.
        settings: the run's :class:`~pyvi._numba.hmc.state.Settings` (path length rule, divergence
            threshold).
        rngs: ``(lanes, 4)`` uint64, each lane's xoshiro256++ state.
        state, proposal, info: the group's State, Proposal (scratch) and Info records.
        step_size: ``(lanes,)`` each lane's step size (0 in padding lanes).
        count, lanes: real lanes and the group's width (a compile-time constant).
    """
    d = state.x.shape[1]
    for w in range(count):
        rng = rngs[w]
        if settings.random_steps:
            proposal.num_steps[w] = 1 + np.int64(uniform(rng) * np.float64(settings.num_steps))
        else:
            proposal.num_steps[w] = settings.num_steps
        sample_momentum(rng, proposal.p[w])
        proposal.energy[w] = -state.log_prob[w] + kinetic_energy(proposal.p[w])
        for i in range(d):
            proposal.x[w, i] = state.x[w, i]
            proposal.grad[w, i] = state.grad[w, i]
    leapfrog(target, proposal.x, proposal.p, proposal.grad, step_size, proposal.num_steps, proposal.log_prob, count,
             lanes)
    for w in range(count):
        energy_error = (-proposal.log_prob[w] + kinetic_energy(proposal.p[w])) - proposal.energy[w]
        # A non-finite energy error is the extreme of divergence: reject, never propagate (NaN or
        # +inf after an overflow or a non-finite gradient on the path, -inf when a user's target
        # returned log p = +inf); so is a position that overflowed. Draws are always finite.
        finite = math.isfinite(energy_error)
        for i in range(d):  # (indexed, not a row view: a view costs two reference-count updates)
            finite = finite and math.isfinite(proposal.x[w, i])
        if not finite:
            energy_error = np.inf
        accept_prob = 1.0 if energy_error <= 0.0 else math.exp(-energy_error)
        if uniform(rngs[w]) < accept_prob:
            for i in range(d):
                state.x[w, i] = proposal.x[w, i]
                state.grad[w, i] = proposal.grad[w, i]
            state.log_prob[w] = proposal.log_prob[w]
        info.accept_prob[w] = accept_prob
        info.energy_error[w] = energy_error
        info.divergent[w] = energy_error > settings.max_energy_error
        info.num_steps[w] = proposal.num_steps[w]
