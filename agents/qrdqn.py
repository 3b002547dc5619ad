"""QR-DQN (Dabney et al. 2018, "Distributional Reinforcement Learning with Quantile
Regression"): DQN whose network predicts ``n_quantiles`` quantiles of each action's return,
trained with the quantile Huber loss against the target network's quantiles at the greedy
next action."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Rule, count, positive
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, QuantileHuberLoss
from rlkit.policies.quantile_q_network import QuantileQNetwork
from rlkit.prototypes import AGENTS
from rlkit.storages.replay import ReplayBatch
from rlkit.types import Obs

from .dqn import DQN, DQNConfig


@dataclasses.dataclass
class QRDQNConfig(DQNConfig):
    """DQN's hyperparameters plus the number of quantiles (sb3-contrib's default, 200) and the
    Huber threshold ``kappa`` of the quantile loss (1, as the paper's experiments)."""

    #: quantiles of each action's return predicted by the network.
    n_quantiles: int = 200
    #: Huber threshold of the quantile regression loss.
    kappa: float = 1.0

    rules: ClassVar[dict[str, Rule]] = {"n_quantiles": count(), "kappa": positive()}


@AGENTS.register("qrdqn")
class QRDQN(DQN):
    """QR-DQN: quantile regression on ``[B, A, N]`` return quantiles; acts greedily on their mean.

    The target is ``r + gamma^n (1 - terminated) theta'_j(s', a*)`` with ``a*`` the greedy
    action of the target network's quantile means (of the online network's with
    ``double_q``). With prioritized replay, priorities are ``|mean_i theta_i - mean_j target_j|``.
    """

    Config = QRDQNConfig
    config: QRDQNConfig
    policy_class = QuantileQNetwork
    policy: QuantileQNetwork
    #: masked acting (QPolicy), random actions and next actions (the bootstrap) legal only
    handles_action_masks = True
    #: targets bootstrap through the storage's discounts (negamax with alternating turns)
    negamax_targets = True

    def default_policy(self, encoder: Encoder | None) -> QuantileQNetwork:
        cfg = self.config
        return QuantileQNetwork(
            self.observation_space,
            self.action_space,
            encoder,
            cfg.hidden_sizes,
            n_quantiles=cfg.n_quantiles,
            dueling=cfg.dueling,
            noisy=cfg.noisy,
        )

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {"td": [QuantileHuberLoss(self.config.kappa)]}

    def return_quantiles(
        self, net: QuantileQNetwork, obs: Obs, target: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``net``'s return quantiles of every action ``[B, A, N]`` and their fractions (None:
        the midpoints); ``target`` marks the target network's next-state pass (hook: IQN
        samples the fractions)."""
        return net.quantiles(obs), None

    def quantile_targets(self, batch: ReplayBatch, next_quantiles: Tensor) -> Tensor:
        """``r + gamma^n (1 - terminated) theta'_j(s', a*)`` ``[B, N']`` from the target
        network's next-state quantiles ``[B, A, N']`` (hook: e.g. a Munchausen target)."""
        chooser = self.policy if self.config.double_q else self.target.net
        best = chooser.legal_q_values(batch.next_obs).argmax(-1)  # legal actions only
        chosen = next_quantiles[torch.arange(len(best), device=best.device), best]
        return batch.rewards.unsqueeze(1) + batch.discounts.unsqueeze(1) * chosen

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        actions = (batch.actions - self.action_start).long()
        with torch.no_grad():
            next_quantiles, _ = self.return_quantiles(self.target.net, batch.next_obs, True)
            target = self.quantile_targets(batch, next_quantiles)
        quantiles, taus = self.return_quantiles(self.policy, batch.obs)
        current = quantiles[torch.arange(len(actions), device=actions.device), actions]
        inputs = self.td_inputs(batch, current.mean(-1), target.mean(-1))  # weights, priorities
        inputs = {"quantiles": current, "target_quantiles": target, **_extra(inputs, taus)}
        self.clip_and_step(self.loss("td", inputs), self.optimizer)
        return {"train/q_mean": current.detach().mean()}


def _extra(inputs: dict[str, Tensor], taus: Tensor | None) -> dict[str, Tensor]:
    extra = {"weight": inputs["weight"]} if "weight" in inputs else {}
    return extra if taus is None else {**extra, "taus": taus}
