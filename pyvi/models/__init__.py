"""Models written the way a user brings their own to pyvi: a log density with its gradient in
``@numba.njit`` code, run by every HMC backend at compiled speed (:mod:`pyvi.targets.user`).

- :class:`LogisticRegression`: Bayesian logistic regression, with scikit-learn's breast-cancer data
  (:func:`breast_cancer`) as the worked example and the benchmark model.
"""

from pyvi.models.logistic_regression import LogisticRegression, breast_cancer, logistic_log_joint

__all__ = ["LogisticRegression", "breast_cancer", "logistic_log_joint"]
