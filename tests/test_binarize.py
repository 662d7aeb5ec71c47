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


@pytest.mark.parametrize("device", DEVICES)
def test_rows_binarised_with_their_offset_get_the_whole_batch_bits(device):
    """A distributed process binarises its rows a..b of a batch alone, with offset a * pixels: the
    bits the whole batch gives them (op and reference; the data's first_row does the same)."""
    probs = torch.rand(9, 113).to(device)
    whole = binarize(probs, 17)
    for start, stop in ((0, 4), (4, 9), (8, 9), (3, 3)):
        part = binarize(probs[start:stop], 17, offset=start * 113)
        assert torch.equal(part, whole[start:stop])
        assert torch.equal(binarize_reference(probs[start:stop], 17, offset=start * 113), part)
    assert torch.equal(counter_uniform(5, 10, offset=30), counter_uniform(5, 40)[30:])


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
    with pytest.raises(ValueError, match="offset"):
        binarize(torch.zeros(3), 0, offset=-1)
    with pytest.raises(ValueError, match="offset must be < 2\\*\\*63"):
        binarize(torch.zeros(3), 0, offset=2**63)


def test_vae_exports_the_same_function():
    import pyvi.vae

    assert pyvi.vae.binarize is binarize
