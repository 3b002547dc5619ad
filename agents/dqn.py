"""Deep Q-Network (Mnih et al. 2015) with double Q-learning, dueling heads, n-step returns and
prioritized replay as options."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlkit.encoders.base import Encoder
from rlkit.encoders.mlp import Identity
from rlkit.policies.ensemble import DenseStack
from rlkit.policies.q_network import QNetwork, QPolicy
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.schedules import Linear
from rlkit.storages.replay import ReplayBatch
from rlkit.types import Obs


@dataclasses.dataclass
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters; defaults are Stable-Baselines3's except ``buffer_size`` and
    ``target_update_interval``, which counts gradient steps here (SB3 counts env steps)."""

    batch_size: int = 32
    train_freq: int = 4
    lr: float = 1e-4
    tau: float = 1.0
    target_update_interval: int = 2_500
    max_grad_norm: float | None = 10.0
    #: epsilon-greedy: from initial to final eps linearly over this fraction of train()'s steps.
    exploration_fraction: float = 0.1
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    #: double Q-learning (van Hasselt et al. 2016): the online net picks the next action.
    double_q: bool = False
    #: dueling head (Wang et al. 2016) in the default Q-network.
    dueling: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"invalid hyperparameter {name}={getattr(self, name)!r}: in [0, 1]"
                )


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

    def default_policy(self, encoder: Encoder | None) -> QNetwork:
        return QNetwork(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            hidden_sizes=self.config.hidden_sizes,
            dueling=self.config.dueling,
        )

    def setup(self) -> None:
        self.optimizer = self.add_optimizer("q", [self.policy])
        self.target = self.add_target("target", self.policy)
        self.action_start = int(self.policy.action_start)
        policy = self.policy
        #: plain MLP Q-network (flattening encoder, no dueling, ReLU): gradients by hand
        self.manual_gradients = (
            type(policy) is QNetwork
            and not policy.dueling
            and type(policy.encoder) is Identity
            and isinstance(policy.head, DenseStack)
            and policy.head.supports_manual_backward
        )

    def exploration_schedule(self) -> Linear:
        """Epsilon as a function of the env step, for the current ``train(total_steps)``."""
        cached = self.__dict__.get("_schedule")
        if cached is not None and cached[0] == self._target_steps:
            return cached[1]
        cfg = self.config
        duration = max(1.0, cfg.exploration_fraction * max(self._target_steps, 1))
        schedule = Linear(cfg.exploration_initial_eps, cfg.exploration_final_eps, duration)
        self._schedule = (self._target_steps, schedule)
        return schedule

    def explore(self, obs: Obs) -> np.ndarray:
        eps = self.exploration_schedule()(self.global_step)
        explore = self.np_random.random(self.num_envs) < eps
        if explore.all():  # skip the network (the common case early on, and with one env)
            return self.random_actions()
        actions = super().explore(obs)
        if explore.any():
            actions[explore] = self.random_actions()[explore]
        return actions

    def iteration_metrics(self) -> dict[str, float]:
        return {"train/epsilon": self.exploration_schedule()(self.global_step)}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        actions = batch.actions - self.action_start if self.action_start else batch.actions
        with torch.no_grad():
            next_q = self.target.net.q_values(batch.next_obs)
            if self.config.double_q:
                best = self.policy.q_values(batch.next_obs).argmax(-1, keepdim=True)
                next_v = next_q.gather(-1, best).squeeze(-1)
            else:
                next_v = next_q.amax(-1)
            target = batch.rewards + batch.discounts * next_v
        if self.manual_gradients:
            return self._manual_update(batch, actions, target)
        q = self.policy.q_values(batch.obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        if self.prioritized:
            loss = (batch.weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
            self.report_td_errors(batch, q.detach() - target)
        else:
            loss = F.smooth_l1_loss(q, target)
        self.optimizer.step(loss)
        return {"loss/td": loss.detach(), "train/q_mean": q.detach().mean()}

    def _manual_update(
        self, batch: ReplayBatch, actions: Tensor, target: Tensor
    ) -> dict[str, Tensor]:
        """The same step for a plain MLP Q-network with the Huber-loss gradient
        ``clamp(q - target, -1, 1) * weight / B`` pushed through the stack by hand."""
        assert isinstance(self.policy, QNetwork) and isinstance(self.policy.head, DenseStack)
        head = self.policy.head
        with torch.no_grad():
            q_all, cache = head.forward_cached(self.policy.encoder(batch.obs))
            index = actions.unsqueeze(-1)
            q = q_all.gather(-1, index).squeeze(-1)
            errors = q - target
            scale = 1.0 / errors.shape[0]
            if self.prioritized:
                loss = (batch.weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
                grad_q = errors.clamp(-1.0, 1.0).mul_(batch.weights * scale)
                self.report_td_errors(batch, errors)
            else:
                loss = F.smooth_l1_loss(q, target)
                grad_q = errors.clamp(-1.0, 1.0).mul_(scale)
            grad_out = torch.zeros_like(q_all).scatter_(-1, index, grad_q.unsqueeze(-1))
        self.optimizer.step_manual(lambda: head.backward_cached(cache, grad_out))
        return {"loss/td": loss, "train/q_mean": q.mean()}
