"""Encoders: observations -> feature vectors."""

from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.encoders.cnn import NatureCNN
from rlkit.encoders.default import default_encoder
from rlkit.encoders.dict import DictEncoder
from rlkit.encoders.mlp import MLP, Identity, mlp

__all__ = [
    "ENCODERS",
    "MLP",
    "DictEncoder",
    "Encoder",
    "Identity",
    "NatureCNN",
    "default_encoder",
    "mlp",
]
