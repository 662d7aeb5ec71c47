"""HMC in Numba: state, metric, leapfrog, transition, dual averaging and driver, one module each,
statement for statement the twins of csrc/core/hmc/ (same random stream), so that for one seed the
Numba and C++ chains agree draw by draw.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithm 5, arXiv:1111.4246.
"""

from pyvi._numba.hmc.driver import CHAIN_GROUP, first_non_finite_start, sample_chains
from pyvi._numba.hmc.leapfrog import integrate
from pyvi._numba.hmc.state import Draws, Settings

__all__ = ["sample_chains", "first_non_finite_start", "integrate", "Settings", "Draws", "CHAIN_GROUP"]
