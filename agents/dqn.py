"""Deep Q-Network (Mnih et al. 2015) with double Q-learning, dueling heads, n-step returns and
prioritized replay as options."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, non_negative, unit
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, TDLoss, greedy_value, td_target
from rlkit.policies.q_network import QNetwork, QPolicy
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.schedules import Linear
from rlkit.storages.replay import ReplayBatch
from rlkit.types import EnvActions, Obs


@dataclasses.dataclass
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters; defaults are Stable-Baselines3's except ``buffer_size`` and
    ``target_update_interval``, which counts gradient steps here (SB3 counts env steps)."""

    #: minibatch size (transitions per update).
    batch_size: int = 32
    #: vectorised env steps (``env.step`` calls) between two rounds of updates.
    train_freq: int = 4
    #: learning rate of the Q-network's Adam optimizer.
    lr: float = 1e-4
    #: target update coefficient (1.0: hard copy of the online network).
    tau: float = 1.0
    #: gradient steps between target-network updates.
    target_update_interval: int = 2_500
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = 10.0
    #: epsilon-greedy: from initial to final eps linearly over this fraction of train()'s steps.
    exploration_fraction: float = 0.1
    #: epsilon at the start of training.
    exploration_initial_eps: float = 1.0
    #: epsilon after exploration_fraction of the steps (kept until the end).
    exploration_final_eps: float = 0.05
    #: double Q-learning (van Hasselt et al. 2016): the online net picks the next action.
    double_q: bool = False
    #: dueling head (Wang et al. 2016) in the default Q-network.
    dueling: bool = False
    #: NoisyNet layers (Fortunato et al. 2018) after the encoder with this initial noise scale
    #: (the paper's 0.5), new noise before every update; 0: plain layers.
    noisy: float = 0.0

    rules: ClassVar[dict[str, Rule]] = {
        "exploration_fraction": unit(),
        "exploration_initial_eps": unit(),
        "exploration_final_eps": unit(),
        "noisy": non_negative(),
    }


@AGENTS.register("dqn")
class DQN(OffPolicyAgent):
    """DQN: Huber TD loss on a Q-network, target network, epsilon-greedy exploration.

    The exploration rate follows an explicit :class:`rlkit.schedules.Linear` schedule over env
    steps (:meth:`exploration_schedule`); evaluation and export act greedily. With prioritized
    replay the absolute TD errors become the sampled transitions' new priorities.
    """

    Config = DQNConfig
    config: DQNConfig
    action_spaces = (spaces.Discrete,)
    policy_class = QPolicy
    policy: QPolicy
    #: masked acting (QPolicy, the prototype's random actions) and a masked bootstrap (update);
    #: targets bootstrap through the storage's discounts (negamax with alternating turns)
    handles_action_masks = negamax_targets = True

    def default_policy(self, encoder: Encoder | None) -> QPolicy:
        cfg, obs, act = self.config, self.observation_space, self.action_space
        return QNetwork(obs, act, encoder, cfg.hidden_sizes, dueling=cfg.dueling, noisy=cfg.noisy)

    def setup(self) -> None:
        self.optimizer = self.add_optimizer("q", [self.policy])
        self.target = self.add_target("target", self.policy)
        self.action_start = int(self.policy.action_start)

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {"td": [TDLoss("huber")]}

    def exploration_schedule(self) -> Linear:
        """Epsilon as a function of the env step, for the current ``train(total_steps)``."""
        cfg = self.config
        duration = max(1.0, cfg.exploration_fraction * max(self._target_steps, 1))
        return Linear(cfg.exploration_initial_eps, cfg.exploration_final_eps, duration)

    def explore(self, obs: Obs) -> EnvActions:
        return self.epsilon_greedy(obs, self.exploration_schedule()(self.global_step))

    def greedy_actions(self, obs: Obs) -> EnvActions:
        """Greedy env actions (what evaluation and export take)."""
        return self.to_env_actions(self.policy.act(obs, deterministic=True)[0])

    def iteration_metrics(self) -> dict[str, float]:
        return {"train/epsilon": self.exploration_schedule()(self.global_step)}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        actions = batch.actions - self.action_start
        with torch.no_grad():
            next_q = self.target.net.legal_q_values(batch.next_obs)  # masked: -inf if illegal
            online = self.policy.legal_q_values(batch.next_obs) if self.config.double_q else None
            target = td_target(batch.rewards, batch.discounts, greedy_value(next_q, online))
        q = self.policy.q_values(batch.obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        self.clip_and_step(self.loss("td", self.td_inputs(batch, q, target)), self.optimizer)
        return {"train/q_mean": q.detach().mean()}
