"""Augmentation catalogue: state, colour, geometric and Compose (RAD / DrAC)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.color import (
    ColorJitter,
    GrayScale,
    RandomConvolution,
    adjust_hue,
    adjust_saturation,
    hsv_to_rgb,
    rgb_to_hsv,
)
from rlkit.augmentations.compose import Compose
from rlkit.augmentations.geometric import (
    RandomCrop,
    RandomCutout,
    RandomCutoutColor,
    RandomFlip,
    RandomRotate,
    RandomTranslate,
)
from rlkit.augmentations.state import GaussianNoise, RandomAmplitudeScaling
from rlkit.configurable import build_from_spec

# id -> factory with small-image-friendly arguments (16x16 frames)
FACTORIES = {
    "gaussian_noise": lambda: GaussianNoise(std=0.1),
    "random_amplitude_scaling": lambda: RandomAmplitudeScaling(),
    "grayscale": lambda: GrayScale(p=0.5),
    "color_jitter": lambda: ColorJitter(),
    "random_convolution": lambda: RandomConvolution(),
    "random_cutout": lambda: RandomCutout(min_size=3, max_size=8),
    "random_cutout_color": lambda: RandomCutoutColor(min_size=3, max_size=8),
    "random_flip": lambda: RandomFlip(),
    "random_rotate": lambda: RandomRotate(),
    "random_translate": lambda: RandomTranslate(pad=3),
}
IMAGE_IDS = [i for i in FACTORIES if i not in ("gaussian_noise", "random_amplitude_scaling")]
ALL_IDS = [*FACTORIES, "random_crop"]


def make(aug_id: str) -> Augmentation:
    return RandomCrop(size=12) if aug_id == "random_crop" else FACTORIES[aug_id]()


def frames(b=8, c=9, h=16, w=16, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)
    return torch.rand((b, c, h, w), generator=g).to(dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- contract, for every augmentation ------------------------------------------------------


def test_registry_ids():
    expected = {
        "gaussian_noise": GaussianNoise,
        "random_amplitude_scaling": RandomAmplitudeScaling,
        "grayscale": GrayScale,
        "color_jitter": ColorJitter,
        "random_convolution": RandomConvolution,
        "random_crop": RandomCrop,
        "random_cutout": RandomCutout,
        "random_cutout_color": RandomCutoutColor,
        "random_flip": RandomFlip,
        "random_rotate": RandomRotate,
        "random_translate": RandomTranslate,
        "compose": Compose,
    }
    for aug_id, cls in expected.items():
        assert AUGMENTATIONS.get(aug_id) is cls
        assert isinstance(
            AUGMENTATIONS.build(
                aug_id if aug_id != "compose" else {"id": "compose", "augmentations": []}
            ),
            Augmentation,
        )


@pytest.mark.parametrize("aug_id", ALL_IDS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_shape_dtype_range_and_not_identity(aug_id, dtype):
    x = frames(dtype=dtype)
    out = make(aug_id)(x, generator=gen(0))
    expected = (8, 9, 12, 12) if aug_id == "random_crop" else x.shape
    assert out.shape == expected
    assert out.dtype == dtype
    if aug_id != "random_crop":
        assert not torch.equal(out, x)
    if dtype == torch.float32 and aug_id != "gaussian_noise":  # noise is unbounded by design
        assert out.min() >= 0 and out.max() <= 1.2  # amplitude scaling may reach 1.2
        if aug_id != "random_amplitude_scaling":
            assert out.max() <= 1.0
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("aug_id", ALL_IDS)
def test_reproducible_with_generator(aug_id):
    x = frames()
    aug = make(aug_id)
    a = aug(x, generator=gen(1))
    b = aug(x, generator=gen(1))
    c = aug(x, generator=gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(3)  # and with the global RNG
    d = aug(x)
    torch.manual_seed(3)
    assert torch.equal(d, aug(x))


@pytest.mark.parametrize("aug_id", ALL_IDS)
def test_samples_get_independent_transforms(aug_id):
    # one sample repeated: a per-sample transform makes the copies differ
    x = frames(b=1).expand(16, -1, -1, -1).contiguous()
    out = make(aug_id)(x, generator=gen(0))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 1


@pytest.mark.parametrize("aug_id", ALL_IDS)
@pytest.mark.parametrize(("frame_c", "stack"), [(3, 3), (1, 4)])
def test_same_transform_for_all_stacked_frames(aug_id, frame_c, stack):
    one = frames(b=16, c=frame_c)
    x = one.repeat(1, stack, 1, 1)  # [f0, f0, f0] per sample
    aug = make(aug_id)
    if aug_id == "gaussian_noise":  # independent per element by design
        pytest.skip("Gaussian noise is drawn per element")
    out = aug(x, generator=gen(0))
    first = out[:, :frame_c]
    for f in range(1, stack):
        assert torch.equal(out[:, f * frame_c : (f + 1) * frame_c], first), f
    if aug_id not in ("grayscale", "random_crop"):  # grayscale leaves gray stacks alone
        assert not torch.equal(out, x)


@pytest.mark.parametrize("aug_id", [*IMAGE_IDS, "random_crop"])
@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 1, 3, 8, 8), (8,)])
def test_image_ops_reject_non_4d(aug_id, shape):
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        make(aug_id)(torch.zeros(shape))


@pytest.mark.parametrize(
    "aug_id",
    ["color_jitter", "grayscale", "random_convolution", "random_cutout_color", "gaussian_noise"],
)
def test_value_ops_reject_integer_dtypes_other_than_uint8(aug_id):
    with pytest.raises(TypeError, match="uint8 or floating"):
        make(aug_id)(torch.zeros((2, 3, 8, 8), dtype=torch.int64))


def test_constructor_errors():
    for bad in (
        lambda: GaussianNoise(std=-1),
        lambda: RandomAmplitudeScaling(low=2, high=1),
        lambda: GrayScale(p=1.5),
        lambda: ColorJitter(hue=0.7),
        lambda: ColorJitter(brightness=-0.1),
        lambda: ColorJitter(channels_per_frame=2),
        lambda: RandomConvolution(kernel_size=2),
        lambda: RandomCrop(size=0),
        lambda: RandomCutout(min_size=5, max_size=2),
        lambda: RandomFlip(p=-0.1),
        lambda: RandomRotate(angles=()),
        lambda: RandomTranslate(pad=-1),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="exceeds"):
        RandomCrop(size=20)(frames())
    with pytest.raises(ValueError, match="channels_per_frame"):
        GrayScale(channels_per_frame=3)(frames(c=4))


# --- state ----------------------------------------------------------------------------------


def test_gaussian_noise_statistics():
    x = torch.zeros(4000, 50)
    d = GaussianNoise(std=0.3)(x, generator=gen(0))
    assert abs(d.mean().item()) < 0.01
    assert abs(d.std().item() - 0.3) < 0.01
    xu = torch.full((500, 100), 128, dtype=torch.uint8)
    du = GaussianNoise(std=0.1)(xu, generator=gen(0)).float() - 128
    assert abs(du.std().item() - 25.5) < 0.5  # std in [0, 1] units -> x 255 for uint8
    assert torch.equal(GaussianNoise(std=0.0)(x, generator=gen(0)), x)


def test_amplitude_scaling_is_one_factor_per_sample_in_range():
    x = torch.rand(64, 17) + 0.5
    out = RandomAmplitudeScaling(low=0.6, high=1.2)(x, generator=gen(0))
    z = out / x
    torch.testing.assert_close(z, z[:, :1].expand_as(z))
    assert z.min() >= 0.6 - 1e-6 and z.max() <= 1.2 + 1e-6
    assert z[:, 0].std() > 0.1
    ze = RandomAmplitudeScaling(elementwise=True)(x, generator=gen(0)) / x
    assert (ze.std(dim=1) > 0.05).all()


# --- colour ---------------------------------------------------------------------------------


def test_grayscale_matches_kornia_and_replicates():
    kornia = pytest.importorskip("kornia")
    x = frames(b=4, c=6, dtype=torch.float32)
    out = GrayScale(p=1.0)(x, generator=gen(0))
    for f in range(2):
        ref = kornia.color.rgb_to_grayscale(x[:, 3 * f : 3 * f + 3])
        for ch in range(3):
            torch.testing.assert_close(out[:, 3 * f + ch : 3 * f + ch + 1], ref)
    # p=0.5: each sample is either untouched or fully gray
    xu = frames(b=64)
    outu = GrayScale(p=0.5)(xu, generator=gen(0))
    same = (outu == xu).flatten(1).all(1)
    gray = (outu[:, 0::3] == outu[:, 1::3]).flatten(1).all(1)
    assert (same | gray).all() and same.any() and gray.any()
    # grayscale stacks are left alone
    xg = frames(c=4)
    assert torch.equal(GrayScale()(xg, generator=gen(0)), xg)
    # 3 gray frames can be declared as such
    xg3 = frames(c=3)
    assert torch.equal(GrayScale(channels_per_frame=1)(xg3, generator=gen(0)), xg3)


def test_hsv_round_trip_and_hue_saturation_match_kornia():
    kornia = pytest.importorskip("kornia")
    x = torch.rand(6, 3, 9, 9, generator=gen(0))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    shift = torch.rand(6, generator=gen(1)) - 0.5
    ref = kornia.enhance.adjust_hue(x, shift * 2 * math.pi)
    torch.testing.assert_close(adjust_hue(x, shift), ref, atol=1e-4, rtol=0)
    factor = torch.rand(6, generator=gen(2)) * 2
    ref = kornia.enhance.adjust_saturation_with_gray_subtraction(x, factor)
    torch.testing.assert_close(adjust_saturation(x, factor), ref, atol=1e-5, rtol=0)


def test_color_jitter_zero_ranges_is_identity_and_brightness_is_a_scale():
    x = frames()
    assert torch.equal(ColorJitter(0, 0, 0, 0)(x, generator=gen(0)), x)
    xf = frames(dtype=torch.float32) * 0.5 + 0.2  # in [0.2, 0.7]: no clamping up to x1.4
    out = ColorJitter(brightness=0.4, contrast=0, saturation=0, hue=0)(xf, generator=gen(0))
    ratio = out / xf
    per_sample = ratio.flatten(1).median(dim=1).values
    torch.testing.assert_close(
        ratio, per_sample[:, None, None, None].expand_as(ratio), atol=1e-4, rtol=1e-4
    )
    assert per_sample.min() >= 0.6 - 1e-5 and per_sample.max() <= 1.4 + 1e-5
    assert per_sample.std() > 0.05


def test_color_jitter_hue_only_keeps_value_channel():
    x = frames(b=8, c=6, dtype=torch.float32)
    out = ColorJitter(0, 0, 0, hue=0.5)(x, generator=gen(0))
    # hue rotation keeps max(r, g, b) (HSV value) of every pixel
    for f in range(2):
        torch.testing.assert_close(
            out[:, 3 * f : 3 * f + 3].amax(1), x[:, 3 * f : 3 * f + 3].amax(1), atol=1e-5, rtol=0
        )


def test_random_convolution_equals_per_sample_conv():
    x = frames(b=5, c=6, dtype=torch.float32)
    aug = RandomConvolution()
    weights = aug.weights(5, 3, gen(0), x.device)
    out = aug(x, generator=gen(0))
    for i in range(5):
        for f in range(2):
            ref = F.conv2d(x[i : i + 1, 3 * f : 3 * f + 3], weights[i], padding=1).clamp(0, 1)
            torch.testing.assert_close(out[i : i + 1, 3 * f : 3 * f + 3], ref)
    assert abs(weights.std().item() - math.sqrt(1 / 27)) < 0.05


def test_random_convolution_uint8_rounds_the_float_result():
    x = frames(b=3, c=3)
    out = RandomConvolution()(x, generator=gen(0))
    ref = RandomConvolution()(x.float() / 255, generator=gen(0))
    assert (out.float() - (ref * 255)).abs().max() <= 0.5 + 1e-3


# --- geometric ------------------------------------------------------------------------------


def find_offsets(canvas, out):
    """All (dy, dx) with canvas[:, dy:dy+h, dx:dx+w] == out for one sample."""
    h, w = out.shape[-2:]
    return [
        (dy, dx)
        for dy in range(canvas.shape[-2] - h + 1)
        for dx in range(canvas.shape[-1] - w + 1)
        if torch.equal(canvas[:, dy : dy + h, dx : dx + w], out)
    ]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_crop_outputs_are_crops(dtype):
    x = frames(b=24, h=14, w=15, dtype=dtype)
    out = RandomCrop(size=(10, 9))(x, generator=gen(0))
    assert out.shape == (24, 9, 10, 9)
    seen = set()
    for i in range(24):
        found = find_offsets(x[i], out[i])
        assert len(found) == 1
        seen.add(found[0])
    assert len(seen) > 5
    assert all(0 <= dy <= 4 and 0 <= dx <= 6 for dy, dx in seen)
    centre = RandomCrop(size=(10, 9)).center(x)
    assert torch.equal(centre, x[:, :, 2:12, 3:12])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_translate_is_a_zero_padded_crop(dtype):
    pad = 3
    x = frames(b=32, h=10, w=11, dtype=dtype) + (1 if dtype == torch.uint8 else 0.01)
    x = x.clamp(max=255 if dtype == torch.uint8 else 1.0).to(dtype)
    out = RandomTranslate(pad=pad)(x, generator=gen(0))
    padded = F.pad(x.double(), (pad, pad, pad, pad))
    seen = set()
    for i in range(32):
        found = find_offsets(padded[i], out[i].double())
        assert len(found) == 1
        seen.add(found[0])
    assert len(seen) > 10


def test_random_flip_flips_whole_samples():
    x = frames(b=64)
    out = RandomFlip(p=0.5)(x, generator=gen(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert (same ^ flipped).all() and 10 < flipped.sum() < 54
    assert torch.equal(RandomFlip(p=1.0)(x, generator=gen(0)), x.flip(-1))


def test_random_rotate_right_angles_equal_rot90():
    x = frames(b=64, h=12, w=12)
    out = RandomRotate(p=0.75)(x, generator=gen(0))
    ks = []
    for i in range(64):
        match = [k for k in range(4) if torch.equal(out[i], torch.rot90(x[i], k, (1, 2)))]
        assert len(match) == 1
        ks.append(match[0])
    assert set(ks) == {0, 1, 2, 3}
    for k, angle in ((1, 90), (2, 180), (3, 270)):
        rot = RandomRotate(p=1.0, angles=[angle])(x, generator=gen(0))
        assert torch.equal(rot, torch.rot90(x, k, (2, 3)))


def test_random_rotate_other_angles_copy_values_and_zero_fill():
    x = frames(b=4, h=10, w=14, dtype=torch.float32) + 0.5
    assert torch.equal(RandomRotate(p=1.0, angles=[180])(x), x.flip(-1).flip(-2))
    out = RandomRotate(p=1.0, angles=[30])(x, generator=gen(0))
    values = set(x.flatten().tolist()) | {0.0}
    assert set(out.flatten().tolist()) <= values
    assert (out == 0).any()  # corners fall outside the source frame
    # the centre pixel stays (rotation about the centre)
    centre = RandomRotate(p=1.0, angles=[30])(frames(b=2, h=9, w=9), generator=gen(0))
    assert torch.equal(centre[:, :, 4, 4], frames(b=2, h=9, w=9)[:, :, 4, 4])


def box_of(mask2d):
    rows = mask2d.any(1).nonzero().flatten()
    cols = mask2d.any(0).nonzero().flatten()
    return rows, cols


@pytest.mark.parametrize("cls", [RandomCutout, RandomCutoutColor])
def test_cutout_box_is_one_rectangle_in_size_range(cls):
    x = frames(b=48, c=6, h=20, w=20).clamp(min=1)
    out = cls(min_size=3, max_size=7)(x, generator=gen(0))
    sizes = set()
    for i in range(48):
        changed = (out[i] != x[i]).any(0)
        rows, cols = box_of(changed)
        h, w = len(rows), len(cols)
        assert 3 <= h <= 7 and 3 <= w <= 7
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
        box = out[i][:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        fill = box[:, :1, :1]
        assert torch.equal(box, fill.expand_as(box))  # constant per channel
        if cls is RandomCutout:
            assert (box == 0).all()
        else:
            assert torch.equal(fill[:3], fill[3:])  # same colour on both frames
        sizes.add((h, w))
    assert len(sizes) > 5


def test_cutout_larger_than_frame_is_clipped():
    x = frames(b=4, h=5, w=5).clamp(min=1)
    out = RandomCutout(min_size=8, max_size=9)(x, generator=gen(0))
    assert (out == 0).all()


def test_cutout_color_float_colours_vary():
    x = frames(b=32, dtype=torch.float32)
    out = RandomCutoutColor(min_size=16, max_size=16)(x, generator=gen(0))
    colours = out[:, :3, 0, 0]
    assert torch.equal(out[:, 0], colours[:, 0, None, None].expand(32, 16, 16))
    assert colours.std() > 0.1


# --- compose --------------------------------------------------------------------------------


class AddOne(Augmentation):
    def forward(self, x, generator=None):
        return x + 1


class Double(Augmentation):
    def forward(self, x, generator=None):
        return x * 2


def test_compose_applies_in_order():
    x = torch.ones(2, 3)
    assert torch.equal(Compose([AddOne(), Double()])(x), torch.full((2, 3), 4.0))
    assert torch.equal(Compose([Double(), AddOne()])(x), torch.full((2, 3), 3.0))
    assert torch.equal(Compose([])(x), x)


def test_compose_from_specs_shares_the_generator_and_round_trips():
    x = frames()
    comp = Compose(
        [
            "random_flip",
            {"id": "random_cutout", "min_size": 2, "max_size": 5},
            RandomTranslate(pad=2),
        ]
    )
    assert [type(a) for a in comp.augmentations] == [RandomFlip, RandomCutout, RandomTranslate]
    g = gen(0)
    manual = RandomTranslate(pad=2)(RandomCutout(2, 5)(RandomFlip()(x, g), g), g)
    assert torch.equal(comp(x, generator=gen(0)), manual)
    rebuilt = build_from_spec("augmentation", comp.spec())
    assert isinstance(rebuilt, Compose) and len(rebuilt) == 3
    assert torch.equal(rebuilt(x, generator=gen(5)), comp(x, generator=gen(5)))
    built = AUGMENTATIONS.build({"id": "compose", "augmentations": ["grayscale"]})
    assert isinstance(built, Compose) and isinstance(built.augmentations[0], GrayScale)


def test_compose_rejects_bad_items():
    with pytest.raises(TypeError):
        Compose([3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Compose("random_flip")
    with pytest.raises(KeyError, match="unknown augmentation id"):
        Compose(["no_such_aug"])


def test_all_catalogue_combinations_chain():
    # every pair composes on uint8 stacks without changing shape or dtype
    x = frames(b=4)
    for a, b in itertools.combinations(FACTORIES, 2):
        out = Compose([make(a), make(b)])(x, generator=gen(0))
        assert out.shape == x.shape and out.dtype == x.dtype
