"""pyvi.binarize: the counter-based dynamic binarisation, op against its torch reference."""

from __future__ import annotations

import math

import pytest
import torch

from pyvi.binarize import binarize, binarize_reference, counter_uniform
from pyvi.testing import DEVICES, DTYPES


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binarize_matches_torch_reference_bit_for_bit(device, dtype):
    probs = torch.rand(7, 113, dtype=dtype).to(device)
    for seed in (0, 1, 2**62 + 12345):
        assert torch.equal(binarize(probs, seed), binarize_reference(probs, seed))


def test_counter_uniform_is_uniform_and_seeded():
    u = counter_uniform(3, 200_000, dtype=torch.float64)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean().item() - 0.5) < 4 * math.sqrt(1 / 12 / 200_000)
    assert abs(u.var().item() - 1 / 12) < 1e-3
    assert not torch.equal(u[:1000], counter_uniform(4, 1000, dtype=torch.float64))
    # Neighbouring indices are uncorrelated.
    assert abs(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1].item()) < 0.01


def test_binarize_rejects_bad_input():
    with pytest.raises(TypeError, match="probs"):
        binarize(torch.zeros(3, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="seed"):
        binarize(torch.zeros(3), -1)


def test_vae_exports_the_same_function():
    import pyvi.vae

    assert pyvi.vae.binarize is binarize
