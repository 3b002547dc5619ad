"""Munchausen DQN (Vieillard et al. 2020, "Munchausen Reinforcement Learning"): DQN whose
target adds the scaled log-policy of the taken action to the reward and replaces the max over
next actions by a soft (entropy-regularised) expectation, with the softmax policy of the
target network's Q-values at temperature ``munchausen_tau``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor

from rlkit.config.rules import Range, Rule, positive, unit
from rlkit.losses import munchausen_bonus, soft_expectation, td_target
from rlkit.prototypes import AGENTS
from rlkit.storages.replay import ReplayBatch

from .dqn import DQN, DQNConfig


@dataclasses.dataclass
class MDQNConfig(DQNConfig):
    """DQN's hyperparameters plus the Munchausen ones (the paper's and the authors' code's:
    temperature 0.03, scaling 0.9, log-policy clip -1). ``double_q`` does not apply (the soft
    expectation replaces the argmax)."""

    #: temperature of the target network's softmax policy (entropy scale).
    munchausen_tau: float = 0.03
    #: scale of the log-policy bonus added to the reward.
    munchausen_alpha: float = 0.9
    #: lower clip of tau * log pi in the bonus (the upper bound is 0).
    munchausen_clip: float = -1.0

    rules: ClassVar[dict[str, Rule]] = {
        "munchausen_tau": positive(),
        "munchausen_alpha": unit(),
        "munchausen_clip": Range(high=0, high_open=True),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.double_q:
            raise ValueError(
                "invalid hyperparameter(s): double_q=True (Munchausen DQN bootstraps from the "
                "soft expectation over next actions, not an argmax; leave double_q False)"
            )


@AGENTS.register("mdqn")
class MDQN(DQN):
    """M-DQN: the TD target is
    ``r + alpha [tau log pi(a|s)]_clip^0 + gamma^n (1 - terminated) sum_a' pi(a'|s')
    (q'(s', a') - tau log pi(a'|s'))`` with ``pi = softmax(q' / tau)`` of the target network
    (:func:`~rlkit.losses.munchausen_bonus`, :func:`~rlkit.losses.soft_expectation`)."""

    Config = MDQNConfig
    config: MDQNConfig

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, net = self.config, self.target.net
        actions = batch.actions - self.action_start
        tau, alpha, clip = cfg.munchausen_tau, cfg.munchausen_alpha, cfg.munchausen_clip
        with torch.no_grad():
            bonus = munchausen_bonus(net.q_values(batch.obs), actions, tau, alpha, clip)
            next_value = soft_expectation(net.q_values(batch.next_obs), tau)
            target = td_target(batch.rewards + bonus, batch.discounts, next_value)
        q = self.policy.q_values(batch.obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        self.clip_and_step(self.loss("td", self.td_inputs(batch, q, target)), self.optimizer)
        return {"train/q_mean": q.detach().mean(), "train/munchausen_bonus": bonus.mean()}
