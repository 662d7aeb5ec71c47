"""Banana log density + gradient throughput on batches: numpy (vectorised over points x data,
the baseline), C++ and Numba (sufficient statistics), torch autograd, and the fused torch op."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import size

from pyvi.targets import Banana

BANANA = Banana.default()
BATCHES = [size(1, 1), size(1_000, 100), size(1_000_000, 1_000)]
IMPLS = ["numpy", "cpp", "numba", "torch-autograd", "torch-fused"]


def _evaluate(impl: str, points: np.ndarray):
    if impl in ("numpy", "cpp", "numba"):
        return BANANA.log_prob_and_grad(points, backend=impl)
    theta = torch.from_numpy(points).requires_grad_()
    log_prob = BANANA.log_prob(theta, impl="fused" if impl == "torch-fused" else "reference")
    (grad,) = torch.autograd.grad(log_prob.sum(), theta)
    return log_prob.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("impl", IMPLS)
def test_log_prob_and_grad(benchmark, impl, batch):
    benchmark.group = f"banana log p + gradient, batch {batch:,}"
    points = np.random.default_rng(0).normal(size=(batch, 2))
    expected = BANANA.log_prob_and_grad(points, backend="numpy")
    got = _evaluate(impl, points)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-10)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-9, atol=1e-9)
    result = benchmark(_evaluate, impl, points)
    assert len(result[0]) == batch
    benchmark.extra_info.update(impl=impl, baseline=impl == "numpy", batch=batch)
