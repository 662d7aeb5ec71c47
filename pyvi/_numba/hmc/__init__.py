"""HMC in Numba: state, metric, leapfrog, transition, dual averaging and driver, one module each,
statement for statement the twins of csrc/core/hmc/ (same random stream), so that for one seed the
Numba and C++ chains agree draw by draw.

References:
    Neal, "MCMC using Hamiltonian dynamics" (2011), arXiv:1206.1901.
    Hoffman & Gelman, "The No-U-Turn Sampler" (2014), Algorithm 5, arXiv:1111.4246.
"""

from pyvi._numba.hmc.driver import CHAIN_GROUP, advance, start
from pyvi._numba.hmc.leapfrog import integrate
from pyvi._numba.hmc.state import Chains, Draws, Settings

__all__ = ["start", "advance", "integrate", "Settings", "Chains", "Draws", "CHAIN_GROUP"]
