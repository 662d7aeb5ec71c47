"""The breast-cancer logistic regression written as a user's :class:`~pyvi.targets.TorchTarget`:
plain torch, autograd for the gradient, no pyvi face.

It is the model of :class:`~pyvi.models.LogisticRegression` (the same X, y and prior precision)
with the log joint written the way a torch user writes it, ``torch.logaddexp(0, eta)`` for
softplus and no normalising constant: the torch backend's user model of issue #11, run by
tests/test_hmc_torch.py against the other backends and timed by bench/bench_hmc_torch.py.
(:meth:`LogisticRegression.torch_log_prob` is the model's own torch face, with the constant.)

References:
    A. Gelman et al., "Bayesian Data Analysis", 3rd ed. (2013), Sec. 16.3 (logistic regression).
"""

from __future__ import annotations

from pyvi.models.logistic_regression import LogisticRegression
from pyvi.targets.torch_target import TorchTarget

__all__ = ["logistic_torch_target"]


def logistic_torch_target(model: LogisticRegression) -> TorchTarget:
    """``model``'s log joint (up to a constant) as a user's ``TorchTarget`` on CPU float64 tensors.

    Example:
        >>> import numpy as np
        >>> import torch
        >>> model = LogisticRegression.breast_cancer()
        >>> target = logistic_torch_target(model)
        >>> log_joint = float(target.fn(torch.zeros(1, model.dim, dtype=torch.float64))[0])
        >>> round(log_joint - model.log_prob_and_grad(np.zeros(model.dim))[0], 4)  # the normalising constant
        28.4871
    """
    import torch

    if not isinstance(model, LogisticRegression):
        raise TypeError(f"model must be a pyvi.models.LogisticRegression, got {type(model).__name__}")
    design, labels = torch.tensor(model.X), torch.tensor(model.y)
    precision = model.prior_precision

    def log_joint(beta):
        eta = beta @ design.T
        log_lik = (labels * eta - torch.logaddexp(torch.zeros_like(eta), eta)).sum(-1)
        return log_lik - 0.5 * precision * (beta * beta).sum(-1)

    return TorchTarget(log_joint, model.dim)
