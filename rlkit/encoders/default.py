"""Pick the natural encoder for an observation space."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from rlkit.encoders.base import Encoder
from rlkit.encoders.cnn import NatureCNN
from rlkit.encoders.dict import DictEncoder
from rlkit.encoders.mlp import Identity
from rlkit.spaces import is_image_space


def default_encoder(observation_space: spaces.Space[Any]) -> Encoder:
    """NatureCNN for uint8 images, DictEncoder for Dict spaces, Identity (flatten) for vectors."""
    if isinstance(observation_space, spaces.Dict):
        return DictEncoder(observation_space)
    if is_image_space(observation_space):
        return NatureCNN(observation_space)
    if isinstance(observation_space, spaces.Box):
        return Identity(observation_space)
    raise TypeError(
        f"no default encoder for observation space {observation_space!r}; supported: Box "
        "(vector or uint8 image) and Dict"
    )
