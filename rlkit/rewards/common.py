"""Shared parts of the exploration bonuses: batch layout, observation whitening, embedding
networks, action coding, nearest-neighbour search and minibatching."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.cnn import NatureCNN
from rlkit.encoders.mlp import mlp
from rlkit.encoders.pathak import PathakCNN
from rlkit.rewards.base import TransitionBatch
from rlkit.spaces import check_space, flat_dim
from rlkit.types import Obs
from rlkit.utils.running import RunningMeanStd


def check_batch(batch: TransitionBatch, owner: str) -> tuple[int, ...]:
    """The leading shape of ``batch`` (``(T, N)`` or ``(B,)``), checked; tensors only."""
    if not isinstance(batch.obs, Tensor) or not isinstance(batch.next_obs, Tensor):
        raise TypeError(f"{owner} expects tensor observations (a Box space), got a dict")
    lead = tuple(batch.dones.shape)
    if len(lead) not in (1, 2):
        raise ValueError(
            f"{owner}: batch.dones must be shaped [T, N] (a rollout) or [B] (a replay sample), "
            f"got {lead}"
        )
    for name, obs in (("obs", batch.obs), ("next_obs", batch.next_obs)):
        if tuple(obs.shape[: len(lead)]) != lead:
            raise ValueError(
                f"{owner}: batch.{name} has leading shape {tuple(obs.shape[: len(lead)])}, "
                f"expected {lead} like batch.dones"
            )
    return lead


def rows(obs: Obs, lead: tuple[int, ...], obs_shape: tuple[int, ...]) -> Tensor:
    """Observations flattened to ``[M, *obs_shape]`` (``M`` = product of ``lead``)."""
    assert isinstance(obs, Tensor)
    return obs.reshape(-1, *obs_shape)


def obs_pair(
    batch: TransitionBatch, lead: tuple[int, ...], obs_shape: tuple[int, ...]
) -> tuple[Tensor, Tensor]:
    """``batch.obs`` and ``batch.next_obs`` flattened to ``[M, *obs_shape]``."""
    return rows(batch.obs, lead, obs_shape), rows(batch.next_obs, lead, obs_shape)


def action_rows(actions: Tensor, lead: tuple[int, ...]) -> Tensor:
    """Actions flattened to ``[M, ...]`` (the per-action shape kept)."""
    return actions.reshape(-1, *actions.shape[len(lead) :])


class ObsWhitener(nn.Module):
    """Optional running whitening of observations, clipped to ``[-clip, clip]`` (RND's
    preprocessing); images are whitened per pixel. Disabled, it passes the input through (uint8
    frames stay uint8 and the encoders scale them)."""

    def __init__(self, space: spaces.Box, enabled: bool, clip: float = 5.0) -> None:
        super().__init__()
        self.enabled = bool(enabled)
        self.clip = float(clip)
        self.shape = tuple(space.shape or ())
        self.stats = RunningMeanStd(self.shape)
        self.space = space

    def encoder_space(self) -> spaces.Box:
        """The space an encoder of the whitened input sees (float, so it does not rescale)."""
        if not self.enabled:
            return self.space
        return spaces.Box(-self.clip, self.clip, self.shape, np.float32)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        if self.enabled:
            self.stats.update(x.reshape(-1, *self.shape))

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        out: Tensor = self.stats.normalize(x.float(), clip=self.clip)
        return out


class VectorEmbedding(nn.Module):
    """Flatten, then a ReLU MLP with a linear output layer."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        self.net = mlp(in_dim, [*hidden, out_dim], "relu", activate_last=False)
        self.feature_dim = int(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x.flatten(1).float())
        return out


def embedding_net(
    space: spaces.Box, feature_dim: int, hidden_dim: int, image: str = "nature"
) -> nn.Module:
    """An observation embedding with a ``feature_dim`` attribute: rlkit's image encoders for
    3-d spaces (``image="nature"``: NatureCNN to ``feature_dim``; ``"pathak"``: the ICM paper's
    PathakCNN and its flat conv features), a ReLU MLP with two hidden layers for vectors."""
    if len(space.shape or ()) == 3:
        if image == "pathak":
            return PathakCNN(space)
        return NatureCNN(space, feature_dim)
    return VectorEmbedding(flat_dim(space), (hidden_dim, hidden_dim), feature_dim)


def check_obs_space(space: spaces.Space[Any], owner: str) -> spaces.Box:
    """Box observations only (vectors or channel-first images)."""
    check_space(space, (spaces.Box,), "observation space", owner)
    assert isinstance(space, spaces.Box)
    return space


class ActionCoder:
    """Actions as forward-model inputs and inverse-model targets.

    ``Discrete``: zero-based indices (as the rollout storage keeps them), one-hot inputs,
    cross-entropy; ``MultiDiscrete``: one one-hot per dimension, summed cross-entropies;
    ``MultiBinary``: bits, binary cross-entropy; ``Box``: the raw vector, squared error.
    """

    def __init__(self, space: spaces.Space[Any], owner: str) -> None:
        check_space(
            space,
            (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box),
            "action space",
            owner,
        )
        self.owner = owner
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.nvec: list[int] = [int(space.n)]
        elif isinstance(space, spaces.MultiDiscrete):
            self.nvec = [int(n) for n in space.nvec.reshape(-1)]
        else:
            self.nvec = []
        self.continuous_dim = 0 if self.nvec else flat_dim(space)

    @property
    def dim(self) -> int:
        """Size of an encoded action (and of an inverse model's output)."""
        return sum(self.nvec) if self.nvec else self.continuous_dim

    def _indices(self, actions: Tensor, m: int) -> Tensor:
        idx = actions.reshape(m, len(self.nvec)).long()
        high = torch.as_tensor(self.nvec, device=idx.device)
        if (idx < 0).any() or (idx >= high).any():
            raise ValueError(
                f"{self.owner}: discrete actions must be zero-based indices below {self.nvec}, "
                f"got values in [{int(idx.min())}, {int(idx.max())}]"
            )
        return idx

    def encode(self, actions: Tensor, m: int) -> Tensor:
        """``[M, dim]`` float inputs for ``M`` actions."""
        if self.nvec:
            idx = self._indices(actions, m)
            return torch.cat(
                [F.one_hot(idx[:, i], n).float() for i, n in enumerate(self.nvec)], dim=1
            )
        return actions.reshape(m, self.continuous_dim).float()

    def inverse_loss(self, logits: Tensor, actions: Tensor) -> Tensor:
        """Per-sample loss ``[M]`` of an inverse model's output ``logits [M, dim]``."""
        m = logits.shape[0]
        if self.nvec:
            idx = self._indices(actions, m)
            parts = torch.split(logits, self.nvec, dim=1)
            return torch.stack(
                [F.cross_entropy(p, idx[:, i], reduction="none") for i, p in enumerate(parts)]
            ).sum(0)
        target = actions.reshape(m, self.continuous_dim).float()
        if isinstance(self.space, spaces.MultiBinary):
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        return 0.5 * (logits - target).pow(2).sum(1)


def knn_distances(
    query: Tensor, keys: Tensor, k: int, exclude_self: bool = False, chunk: int = 2048
) -> Tensor:
    """Euclidean distances from each query row to its ``k`` nearest ``keys`` rows, ascending
    (``[M, k]``). With ``exclude_self`` (``keys`` is ``query``) each row's own zero distance is
    dropped, as RE3's ``kthvalue(dists, k + 1)``. Needs enough keys; computed in row chunks
    through one matrix product per chunk, in float64 so repeated rows come out at distance 0."""
    extra = 1 if exclude_self else 0
    if keys.shape[0] < k + extra:
        raise ValueError(f"knn_distances: need at least {k + extra} keys, got {keys.shape[0]}")
    q, kk = query.double(), keys.double()
    q_sq, k_sq = q.pow(2).sum(1, keepdim=True), kk.pow(2).sum(1)
    out = []
    for start in range(0, q.shape[0], chunk):
        part = q[start : start + chunk]
        d2 = (q_sq[start : start + chunk] + k_sq - 2.0 * part @ kk.T).clamp(min=0.0)
        out.append(d2.topk(k + extra, dim=1, largest=False).values[:, extra:])
    return torch.cat(out, 0).sqrt().to(query.dtype)


def minibatches(n: int, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """Shuffled index minibatches covering ``range(n)`` once."""
    perm = torch.randperm(n, device=device)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


def check_positive(owner: str, **values: float) -> None:
    """Raise naming the first argument that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{owner}: {name} must be > 0, got {value}")
