"""HMC in torch: every chain in lockstep as one ``(num_chains, dim)`` tensor, on the CPU or a GPU.

The same pieces as the other backends, one module each: State and Info records (:mod:`.state`),
the identity metric (:mod:`.metric`), the leapfrog (:mod:`.leapfrog`), one transition
(:mod:`.transition`), per-chain dual averaging (:mod:`.dual_averaging`), the target's torch face
(:mod:`.face`), the run's random stream (:mod:`.rng`) and the driver with its draw recorder
(:mod:`.driver`, :mod:`.draws`). One leapfrog step is one batched gradient for all chains; step
sizes, adaptation, accept/reject and divergence flags are per chain. Every piece is capture-safe
(fixed shapes, state updated in place, no host synchronisation), so on CUDA whole transitions
replay from CUDA graphs (pyvi/_cuda_graph.py).

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithm 5, arXiv:1111.4246.
    Lao et al., "tfp.mcmc: Modern Markov Chain Monte Carlo Tools Built for Modern Hardware" (2020),
    arXiv:2002.01184 (many chains in lockstep on accelerators).
"""

from pyvi.hmc.torch_backend.driver import run_torch, torch_leapfrog

__all__ = ["run_torch", "torch_leapfrog"]
