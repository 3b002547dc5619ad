"""Data augmentations for observations (image and state)."""

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.basic import Identity, RandomShift

__all__ = ["AUGMENTATIONS", "Augmentation", "Identity", "RandomShift"]
