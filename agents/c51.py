"""C51 (Bellemare et al. 2017, "A Distributional Perspective on Reinforcement Learning"): DQN
whose network predicts a categorical distribution of each action's return over ``n_atoms``
evenly spaced values in ``[v_min, v_max]``, trained by cross-entropy against the target
network's distribution at the greedy next action, shifted by the reward, discounted and
projected back onto the support."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Range, Rule, count
from rlkit.encoders.base import Encoder
from rlkit.losses import CategoricalLoss, LossTerm, categorical_projection
from rlkit.policies.categorical_q_network import CategoricalQNetwork
from rlkit.prototypes import AGENTS
from rlkit.storages.replay import ReplayBatch

from .dqn import DQN, DQNConfig


@dataclasses.dataclass
class C51Config(DQNConfig):
    """DQN's hyperparameters plus the support: ``n_atoms`` values from ``v_min`` to ``v_max``
    (51 in [-10, 10], the paper's)."""

    #: atoms of the return distribution's support.
    n_atoms: int = 51
    #: smallest value of the support (lower bound of the return).
    v_min: float = -10.0
    #: largest value of the support (upper bound of the return).
    v_max: float = 10.0

    rules: ClassVar[dict[str, Rule]] = {
        "n_atoms": count(minimum=2),
        "v_min": Range(),
        "v_max": Range(),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.v_min < self.v_max:
            raise ValueError(
                f"invalid hyperparameter(s): v_min={self.v_min!r}, v_max={self.v_max!r} "
                "(v_min must be < v_max)"
            )


@AGENTS.register("c51")
class C51(DQN):
    """C51: categorical return distributions; acts greedily on their means.

    The target distribution is the target network's at ``a*`` (its greedy action; the online
    network's with ``double_q``), each atom ``z`` moved to ``r + gamma^n (1 - terminated) z``,
    clipped to the support and projected onto it. With prioritized replay, priorities are the
    per-sample cross-entropies (as Rainbow).
    """

    Config = C51Config
    config: C51Config
    policy_class = CategoricalQNetwork
    policy: CategoricalQNetwork

    def default_policy(self, encoder: Encoder | None) -> CategoricalQNetwork:
        cfg = self.config
        return CategoricalQNetwork(
            self.observation_space,
            self.action_space,
            encoder,
            cfg.hidden_sizes,
            n_atoms=cfg.n_atoms,
            v_min=cfg.v_min,
            v_max=cfg.v_max,
            dueling=cfg.dueling,
            noisy=cfg.noisy,
        )

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {"td": [CategoricalLoss()]}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        actions = (batch.actions - self.action_start).long()
        rows = torch.arange(len(actions), device=actions.device)
        with torch.no_grad():
            next_probs = self.target.net.log_probs(batch.next_obs).exp()  # [B, A, K]
            next_q = (next_probs * self.target.net.support).sum(-1)
            chooser = self.policy.q_values(batch.next_obs) if self.config.double_q else next_q
            best = chooser.argmax(-1)
            target = categorical_projection(
                next_probs[rows, best], batch.rewards, batch.discounts, self.policy.support
            )
        log_probs = self.policy.log_probs(batch.obs)[rows, actions]  # [B, K]
        inputs = {"log_probs": log_probs, "target_probs": target}
        if self.prioritized:
            inputs["weight"] = batch.weights
            self.report_td_errors(batch, -(target * log_probs.detach()).sum(-1))
        self.clip_and_step(self.loss("td", inputs), self.optimizer)
        q = (log_probs.detach().exp() * self.policy.support).sum(-1)
        return {"train/q_mean": q.mean()}
