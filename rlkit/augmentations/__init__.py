"""Data augmentations for observations (image and state)."""

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.basic import Identity, RandomShift
from rlkit.augmentations.color import ColorJitter, GrayScale, RandomConvolution
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

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "ColorJitter",
    "Compose",
    "GaussianNoise",
    "GrayScale",
    "Identity",
    "RandomAmplitudeScaling",
    "RandomConvolution",
    "RandomCrop",
    "RandomCutout",
    "RandomCutoutColor",
    "RandomFlip",
    "RandomRotate",
    "RandomShift",
    "RandomTranslate",
]
