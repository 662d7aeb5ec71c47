"""Target densities for HMC and VI.

- :class:`Banana`: the banana posterior of Problem 3, with exact ground truth.
- :class:`Gaussian`: a multivariate normal (tests, and a second target the native core knows).
- :class:`LogDensity`: any Python log density with its gradient (numpy HMC backend only).
"""

from pyvi.targets.banana import Banana
from pyvi.targets.gaussian import Gaussian
from pyvi.targets.log_density import LogDensity

__all__ = ["Banana", "Gaussian", "LogDensity"]
