"""Encoder for Dict observation spaces: one sub-encoder per key, features concatenated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.encoders.cnn import NatureCNN
from rlkit.encoders.mlp import Identity
from rlkit.spaces import check_space, is_image_space, spaces_equal
from rlkit.utils.nn import orthogonal_init


@ENCODERS.register("dict")
class DictEncoder(Encoder):
    """Encodes each key of a Dict observation and concatenates the features (sorted key order).

    By default image keys get a :class:`NatureCNN` with ``cnn_feature_dim`` features and vector
    keys are flattened (:class:`Identity`); pass ``encoders={key: Encoder}`` to choose per key.
    With ``feature_dim`` set, a ``Linear + ReLU`` projects the concatenation to that size.
    ``keys`` encodes only those keys (e.g. a decentralised actor's ``["obs", "agent_id"]`` on
    multi-agent rows); the others are ignored.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        feature_dim: int | None = None,
        encoders: Mapping[str, Encoder] | None = None,
        cnn_feature_dim: int = 256,
        keys: Sequence[str] | None = None,
    ) -> None:
        check_space(observation_space, (spaces.Dict,), "observation space", "DictEncoder")
        assert isinstance(observation_space, spaces.Dict)
        super().__init__(observation_space, None)
        given = dict(encoders or {})
        unknown = set(given) - set(keys if keys is not None else observation_space.spaces)
        if unknown:
            raise ValueError(
                f"DictEncoder: encoders for unknown keys {sorted(unknown)}; observation keys are "
                f"{sorted(observation_space.spaces)}"
            )
        if keys is not None:
            missing = sorted(set(keys) - set(observation_space.spaces))
            if missing or not keys:
                raise ValueError(
                    f"DictEncoder: keys={list(keys)!r} must be a non-empty subset of the "
                    f"observation keys {sorted(observation_space.spaces)}"
                )
        self.keys = sorted(keys if keys is not None else observation_space.spaces)
        subs: dict[str, Encoder] = {}
        for key in self.keys:
            sub_space = observation_space.spaces[key]
            if key in given:
                enc = given[key]
                if not spaces_equal(enc.observation_space, sub_space):
                    raise ValueError(
                        f"DictEncoder: encoder for key {key!r} was built for "
                        f"{enc.observation_space!r}, but the key's space is {sub_space!r}"
                    )
            elif is_image_space(sub_space):
                enc = NatureCNN(sub_space, cnn_feature_dim)
            else:
                enc = Identity(sub_space)
            subs[key] = enc
        self.encoders = nn.ModuleDict(subs)
        total = sum(e.feature_dim for e in subs.values())
        self.projection: nn.Module = nn.Identity()
        if feature_dim is not None:
            self.projection = nn.Sequential(
                orthogonal_init(nn.Linear(total, int(feature_dim))), nn.ReLU()
            )
            total = int(feature_dim)
        self.feature_dim = total

    def forward(self, obs: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        if not isinstance(obs, Mapping):
            raise TypeError(f"DictEncoder expects a dict of tensors, got {type(obs).__name__}")
        feats = [self.encoders[k](obs[k]) for k in self.keys]
        out: Tensor = self.projection(torch.cat(feats, dim=-1))
        return out
