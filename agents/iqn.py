"""IQN (Dabney et al. 2018, "Implicit Quantile Networks for Distributional Reinforcement
Learning"): QR-DQN whose network takes the quantile fraction as an input, trained on fractions
sampled uniformly for every sample: ``n_quantiles`` for the online network, ``n_target_quantiles``
for the target network's next-state quantiles."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.policies.implicit_quantile_network import ImplicitQuantileNetwork
from rlkit.prototypes import AGENTS
from rlkit.types import Obs

from .qrdqn import QRDQN, QRDQNConfig


@dataclasses.dataclass
class IQNConfig(QRDQNConfig):
    """QR-DQN's hyperparameters with IQN's sample counts (the authors' Dopamine defaults):
    ``n_quantiles`` (N, 64) and ``n_target_quantiles`` (N', 64) fractions per sample for the
    loss, ``n_acting_quantiles`` (K, 32) for acting, and ``n_cos`` (64) cosine features."""

    #: quantile fractions sampled per sample for the online network (N).
    n_quantiles: int = 64
    #: quantile fractions sampled per sample for the target network (N').
    n_target_quantiles: int = 64
    #: evenly spaced fractions whose mean gives the Q-values for acting (K).
    n_acting_quantiles: int = 32
    #: cosine features embedding each quantile fraction.
    n_cos: int = 64

    rules: ClassVar[dict[str, Rule]] = {
        "n_target_quantiles": count(),
        "n_acting_quantiles": count(),
        "n_cos": count(),
    }


@AGENTS.register("iqn")
class IQN(QRDQN):
    """IQN: quantiles at sampled fractions ``tau ~ U(0, 1)``, the quantile Huber loss with
    those fractions, greedy acting on the mean over ``n_acting_quantiles`` evenly spaced
    fractions (see :class:`~rlkit.policies.ImplicitQuantileNetwork`). The fractions come from
    the agent's generator, so runs are reproducible from the seed."""

    Config = IQNConfig
    config: IQNConfig
    policy_class = ImplicitQuantileNetwork  # type: ignore[assignment]
    policy: ImplicitQuantileNetwork  # type: ignore[assignment]

    def default_policy(self, encoder: Encoder | None) -> ImplicitQuantileNetwork:  # type: ignore[override]
        cfg = self.config
        return ImplicitQuantileNetwork(
            self.observation_space,
            self.action_space,
            encoder,
            cfg.hidden_sizes,
            n_cos=cfg.n_cos,
            n_acting_quantiles=cfg.n_acting_quantiles,
            dueling=cfg.dueling,
            noisy=cfg.noisy,
        )

    def return_quantiles(  # type: ignore[override]
        self, net: ImplicitQuantileNetwork, obs: Obs, target: bool = False
    ) -> tuple[Tensor, Tensor]:
        features = net.state_features(obs)
        count = self.config.n_target_quantiles if target else self.config.n_quantiles
        taus = torch.rand(features.shape[0], count, generator=self._generator)
        taus = taus.to(features.device)
        return net.quantiles_at(features, taus), taus
