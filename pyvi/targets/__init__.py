"""Target densities for HMC and VI, and the protocol they follow (:mod:`pyvi.targets.base`).

- :class:`Target`: the protocol: ``dim`` and a numpy ``log_prob_and_grad``, plus optional faces
  for the native backends, torch and ``vi``.
- :class:`Banana`: the banana posterior of Problem 3, with exact ground truth.
- :class:`Gaussian`: a multivariate normal (tests, and a second target the native core knows).
- Bring your own model: :class:`NumbaTarget` (an ``@numba.njit`` log density with its gradient,
  on the cpp, numba and numpy backends at native speed), :class:`CTarget` (a C function pointer,
  cpp backend), :class:`TorchTarget` (a log density written in torch over a batch of points: the
  torch HMC backend, on the CPU or a GPU; gradients by autograd) and :class:`LogDensity` (Python
  callables, numpy backend only).

Exactly solvable targets (``sample_exact``, ``posterior_moments``, ``log_evidence``; scored with
:func:`pyvi.ground_truth.score`): :class:`Gaussian`, :class:`Funnel` (Neal's, centred or not),
:class:`GaussianMixture`, :class:`HybridRosenbrock` (Pagani et al.), and :class:`Banana`.
"""

from pyvi.targets.banana import Banana
from pyvi.targets.base import Target, as_target
from pyvi.targets.c_target import CTarget
from pyvi.targets.funnel import Funnel
from pyvi.targets.gaussian import Gaussian
from pyvi.targets.gaussian_mixture import GaussianMixture
from pyvi.targets.hybrid_rosenbrock import HybridRosenbrock
from pyvi.targets.log_density import LogDensity
from pyvi.targets.numba_target import NumbaTarget
from pyvi.targets.torch_target import TorchTarget

__all__ = ["Target", "as_target", "Banana", "Gaussian", "Funnel", "GaussianMixture", "HybridRosenbrock", "NumbaTarget",
           "CTarget", "TorchTarget", "LogDensity"]
