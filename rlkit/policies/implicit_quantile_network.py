"""Implicit quantile network (IQN, Dabney et al. 2018, "Implicit Quantile Networks for
Distributional Reinforcement Learning"): the return quantile of each action at any fraction
``tau`` in ``(0, 1)``, from the state features multiplied by a cosine embedding of ``tau``.

Acting is greedy on the mean over ``n_acting_quantiles`` fractions; this network uses the
evenly spaced midpoints ``(2i + 1) / 2K`` there (the authors sample them uniformly): the greedy
policy is then a deterministic function of the observation, so evaluation, export and every
``QPolicy`` consumer treat it like a plain Q-network. The agent trains on sampled fractions
(:meth:`ImplicitQuantileNetwork.quantiles_at`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.losses.distributional import quantile_midpoints
from rlkit.policies.base import POLICIES
from rlkit.policies.q_network import ActionValueNetwork
from rlkit.spaces import is_image_space
from rlkit.types import Obs
from rlkit.utils.noisy import make_noisy


@POLICIES.register("implicit_quantile_network")
class ImplicitQuantileNetwork(ActionValueNetwork):
    """``Z_tau(s, a) = f(psi(s) * phi(tau))_a``.

    ``psi`` is the encoder followed by the first hidden layer (vector observations) or the
    encoder alone (images, whose CNN ends in a dense layer; ``hidden_sizes=None`` then adds
    none); ``phi(tau) = ReLU(Linear(cos(pi i tau), i = 0..n_cos-1))`` has ``psi``'s width;
    ``f`` is the remaining hidden layers and the head (dueling and noisy options of
    :class:`~rlkit.policies.q_network.ActionValueNetwork`). ``hidden_sizes=None`` is
    ``(64, 64)`` for vector observations.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        **ActionValueNetwork.argument_rules,
        "n_cos": count(integer=True),
        "n_acting_quantiles": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        n_cos: int = 64,
        n_acting_quantiles: int = 32,
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        if hidden_sizes is None:
            hidden_sizes = () if is_image_space(observation_space) else (64, 64)
        sizes = [int(s) for s in hidden_sizes]
        first = sizes[0] if sizes else None
        super().__init__(
            observation_space,
            action_space,
            encoder,
            sizes[1:],
            activation,
            dueling=dueling,
            noisy=noisy,
            atoms=1,
            feature_dim=first,
        )
        width = first if first is not None else self.encoder.feature_dim
        self.psi: nn.Module = (
            nn.Sequential(nn.Linear(self.encoder.feature_dim, width), nn.ReLU())
            if first is not None
            else nn.Identity()
        )
        self.n_cos, self.n_acting_quantiles = int(n_cos), int(n_acting_quantiles)
        self.phi = nn.Sequential(nn.Linear(self.n_cos, width), nn.ReLU())
        if self.noisy:
            make_noisy(self.psi, self.noisy)
        self.register_buffer(
            "cos_frequencies",
            math.pi * torch.arange(self.n_cos, dtype=torch.float32),
            persistent=False,
        )

    cos_frequencies: Tensor

    def state_features(self, obs: Obs) -> Tensor:
        """``psi(s)``: ``[B, width]`` (compute once, then :meth:`quantiles_at` per set of taus)."""
        out: Tensor = self.psi(self.encoder(obs))
        return out

    def quantiles_at(self, features: Tensor, taus: Tensor) -> Tensor:
        """Quantiles of every action at fractions ``taus`` ``[B, N]`` from :meth:`state_features`
        ``[B, width]``: ``[B, num_actions, N]``."""
        batch, n = taus.shape
        embedding = self.phi(torch.cos(taus.unsqueeze(-1) * self.cos_frequencies))  # [B, N, W]
        mixed = (features.unsqueeze(1) * embedding).reshape(batch * n, -1)
        values = self.action_values(mixed).reshape(batch, n, self.num_actions)
        return values.transpose(1, 2)

    def quantiles(self, obs: Obs, taus: Tensor | None = None) -> Tensor:
        """Quantiles at ``taus`` ``[B, N]`` (default: the acting midpoints for every row):
        ``[B, num_actions, N]``."""
        features = self.state_features(obs)
        if taus is None:
            taus = quantile_midpoints(self.n_acting_quantiles, features.device)
            taus = taus.unsqueeze(0).expand(features.shape[0], -1)
        return self.quantiles_at(features, taus)

    def q_values(self, obs: Obs) -> Tensor:
        return self.quantiles(obs).mean(-1)


__all__ = ["ImplicitQuantileNetwork"]
