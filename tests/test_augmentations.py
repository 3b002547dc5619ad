"""Augmentations: Identity and DrQ RandomShift."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlkit.augmentations import AUGMENTATIONS, Augmentation, Identity, RandomShift


def frames(b=4, c=3, h=10, w=12, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)
    return torch.rand((b, c, h, w), generator=g, dtype=dtype)


def replicate_pad(x, pad):
    """Reference padding: F.pad(mode='replicate') on a float copy of [B, C, H, W]."""
    return F.pad(x.double(), (pad, pad, pad, pad), mode="replicate")


def matching_offsets(padded, out, pad):
    """All crop offsets (dy, dx) in [0, 2 pad]^2 of one padded sample that equal ``out``."""
    h, w = out.shape[-2:]
    out = out.double()
    return [
        (dy, dx)
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
        if torch.equal(padded[:, dy : dy + h, dx : dx + w], out)
    ]


def test_identity_returns_input():
    x = frames()
    aug = Identity()
    out = aug(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x)
    assert isinstance(aug, Augmentation)
    assert AUGMENTATIONS.get("identity") is Identity
    assert AUGMENTATIONS.get("random_shift") is RandomShift


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_random_shift_keeps_shape_and_dtype(dtype):
    x = frames(dtype=dtype)
    out = RandomShift(pad=2)(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert not torch.equal(out, x)  # some sample moved
    # values are copied, never interpolated
    assert set(out.unique().tolist()) <= set(x.unique().tolist())


def test_random_shift_reproducible_with_generator():
    x = frames(b=8)
    aug = RandomShift(pad=3)
    a = aug(x, generator=torch.Generator().manual_seed(42))
    b = aug(x, generator=torch.Generator().manual_seed(42))
    c = aug(x, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_shift_uses_global_rng_without_generator():
    x = frames(b=8)
    aug = RandomShift(pad=3)
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    b = aug(x)
    assert torch.equal(a, b)


def test_pad_zero_is_identity():
    x = frames()
    out = RandomShift(pad=0)(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_negative_pad_rejected():
    with pytest.raises(ValueError, match="pad"):
        RandomShift(pad=-1)


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 1, 3, 8, 8), (8,)])
def test_non_4d_input_rejected(shape):
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        RandomShift(pad=2)(torch.zeros(shape))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("pad", [1, 4])
def test_each_output_is_a_replicate_padded_crop(dtype, pad):
    x = frames(b=16, c=3, h=9, w=11, dtype=dtype, seed=1)
    out = RandomShift(pad=pad)(x, generator=torch.Generator().manual_seed(7))
    padded = replicate_pad(x, pad)
    offsets = []
    for i in range(x.shape[0]):
        found = matching_offsets(padded[i], out[i], pad)
        # random frames: exactly one offset reproduces the output, for all channels at once
        assert len(found) == 1, (i, found)
        offsets.append(found[0])
    # over 16 samples the shifts are not all the same and stay in range
    assert len(set(offsets)) > 1
    assert all(0 <= dy <= 2 * pad and 0 <= dx <= 2 * pad for dy, dx in offsets)


def test_shift_larger_than_image_still_replicates_edges():
    x = frames(b=6, c=2, h=3, w=3, dtype=torch.float32, seed=2)
    pad = 5
    out = RandomShift(pad=pad)(x, generator=torch.Generator().manual_seed(0))
    padded = replicate_pad(x, pad)
    for i in range(x.shape[0]):
        assert matching_offsets(padded[i], out[i], pad), i


def test_stacked_frames_move_together():
    # channel c = base + 1000 c: if every channel gets the same shift, subtracting the
    # channel offset recovers the same image in every channel
    g = torch.Generator().manual_seed(3)
    base = torch.randint(0, 100, (32, 1, 12, 12), generator=g).float()  # exact in float32
    x = base + 1000.0 * torch.arange(4.0).reshape(1, 4, 1, 1)
    out = RandomShift(pad=4)(x, generator=torch.Generator().manual_seed(0))
    recovered = out - 1000.0 * torch.arange(4.0).reshape(1, 4, 1, 1)
    for c in range(1, 4):
        torch.testing.assert_close(recovered[:, c], recovered[:, 0])
    assert not torch.allclose(recovered[:, 0], base[:, 0])


def test_shift_distribution_covers_all_offsets():
    pad = 2
    x = frames(b=200, c=1, h=7, w=7, dtype=torch.float32, seed=4)
    out = RandomShift(pad=pad)(x, generator=torch.Generator().manual_seed(0))
    padded = replicate_pad(x, pad)
    seen = set()
    for i in range(x.shape[0]):
        found = matching_offsets(padded[i], out[i], pad)
        assert len(found) == 1
        seen.add(found[0])
    assert len(seen) == (2 * pad + 1) ** 2
