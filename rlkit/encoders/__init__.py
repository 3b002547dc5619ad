"""Encoders: observations -> feature vectors."""

from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.encoders.cnn import NatureCNN
from rlkit.encoders.default import default_encoder
from rlkit.encoders.dict import DictEncoder
from rlkit.encoders.drq import DrQCNN
from rlkit.encoders.impala import ImpalaResNet
from rlkit.encoders.mlp import MLP, Identity, mlp
from rlkit.encoders.pathak import PathakCNN

__all__ = [
    "ENCODERS",
    "MLP",
    "DictEncoder",
    "DrQCNN",
    "Encoder",
    "Identity",
    "ImpalaResNet",
    "NatureCNN",
    "PathakCNN",
    "default_encoder",
    "mlp",
]
