"""Models written the way a user brings their own to pyvi: a log density with its gradient in
``@numba.njit`` code (:class:`pyvi.targets.NumbaTarget`) or in plain torch
(:class:`pyvi.targets.TorchTarget`), run by the HMC backends.

- :func:`banana_log_joint`, :func:`user_banana_target`: the banana as a user's ``NumbaTarget``, the
  worked example of writing one (it gives the built-in banana's draws bit for bit).
- :class:`LogisticRegression`: Bayesian logistic regression, with scikit-learn's breast-cancer data
  (:func:`breast_cancer`) as the worked example and the benchmark model; :func:`logistic_torch_target`,
  the same model as a user's ``TorchTarget``.
"""

from pyvi.models.logistic_regression import LogisticRegression, breast_cancer, logistic_log_joint
from pyvi.models.logistic_torch import logistic_torch_target
from pyvi.models.user_banana import banana_log_joint, user_banana_target

__all__ = ["LogisticRegression", "banana_log_joint", "breast_cancer", "logistic_log_joint", "logistic_torch_target",
           "user_banana_target"]
