"""Target densities for HMC and VI, and the protocol they follow (:mod:`pyvi.targets.base`).

- :class:`Target`: the protocol: ``dim`` and a numpy ``log_prob_and_grad``, plus optional faces
  for the native backends, torch and ``vi``.
- :class:`Banana`: the banana posterior of Problem 3, with exact ground truth.
- :class:`Gaussian`: a multivariate normal (tests, and a second target the native core knows).
- :class:`LogDensity`: any Python log density with its gradient (numpy HMC backend only).
- :class:`TorchTarget`: a log density written in torch over a batch of points (the torch HMC
  backend, on the CPU or a GPU; gradients by autograd).
"""

from pyvi.targets.banana import Banana
from pyvi.targets.base import Target, as_target
from pyvi.targets.gaussian import Gaussian
from pyvi.targets.log_density import LogDensity
from pyvi.targets.torch_target import TorchTarget

__all__ = ["Target", "as_target", "Banana", "Gaussian", "LogDensity", "TorchTarget"]
