"""Deep Q-Network (Mnih et al. 2015) with double Q-learning, dueling heads, n-step returns and
prioritized replay as options."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlkit.encoders.base import Encoder
from rlkit.encoders.mlp import Identity
from rlkit.policies.ensemble import NUMPY_MAX_BATCH, DenseStack
from rlkit.policies.fused import plain_cpu_float32
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
            and type(policy.head) is DenseStack
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
        return self._epsilon_greedy(lambda: self.greedy_actions(obs))

    def explore_numpy(self, obs: Any) -> np.ndarray | None:
        if not self._numpy_greedy_applies(obs):
            return None
        return self._epsilon_greedy(lambda: self._numpy_greedy(obs))

    def _epsilon_greedy(self, greedy: Callable[[], np.ndarray]) -> np.ndarray:
        eps = self.exploration_schedule()(self.global_step)
        explore = self.np_random.random(self.num_envs) < eps
        if explore.all():  # skip the network (the common case early on, and with one env)
            return self.random_actions()
        actions = greedy()
        if explore.any():
            actions[explore] = self.random_actions()[explore]
        return actions

    def greedy_actions(self, obs: Obs) -> np.ndarray:
        """Greedy env actions; a plain MLP Q-network on a small CPU batch runs in NumPy (one
        call per env step, where torch's per-operation cost would dominate)."""
        if isinstance(obs, Tensor) and obs.device.type == "cpu":
            array = obs.numpy()
            if self._numpy_greedy_applies(array):
                return self._numpy_greedy(array)
        return super().explore(obs)

    def _numpy_greedy_applies(self, obs: Any) -> bool:
        head = self.policy.head
        return (
            self.use_fused_kernels
            and self.manual_gradients
            and isinstance(obs, np.ndarray)
            and obs.dtype.kind == "f"  # (uint8 images: the encoder rescales them)
            and obs.shape[0] <= NUMPY_MAX_BATCH
            and isinstance(head, DenseStack)
            and not (head._forward_hooks or head._forward_pre_hooks)
            and head.layers[0].weight.device.type == "cpu"
        )

    def _numpy_greedy(self, obs: np.ndarray) -> np.ndarray:
        head = self.policy.head
        assert isinstance(head, DenseStack)
        x = obs.reshape(obs.shape[0], -1).astype(np.float32, copy=False)
        greedy = head.numpy_forward(x).argmax(-1) + self.action_start
        return greedy.astype(self.action_space.dtype or np.int64, copy=False)

    def iteration_metrics(self) -> dict[str, float]:
        return {"train/epsilon": self.exploration_schedule()(self.global_step)}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        actions = batch.actions - self.action_start if self.action_start else batch.actions
        if self.fused_kernels_apply("dqn", self._manual_path_applies):
            return self._manual_update(batch, actions)
        with torch.no_grad():
            next_q = self.target.net.q_values(batch.next_obs)
            if self.config.double_q:
                best = self.policy.q_values(batch.next_obs).argmax(-1, keepdim=True)
                next_v = next_q.gather(-1, best).squeeze(-1)
            else:
                next_v = next_q.amax(-1)
            target = batch.rewards + batch.discounts * next_v
        q = self.policy.q_values(batch.obs).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        if self.prioritized:
            loss = (batch.weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
            self.report_td_errors(batch, q.detach() - target)
        else:
            loss = F.smooth_l1_loss(q, target)
        self.optimizer.step(loss)
        return {"loss/td": loss.detach(), "train/q_mean": q.detach().mean()}

    def _manual_path_applies(self) -> bool:
        return self.manual_gradients and plain_cpu_float32(self.policy)

    def begin_round(self, batches: ReplayBatch) -> None:
        """On the hand-written path without double Q-learning, evaluate the target network on
        the whole round's ``next_obs`` in one pass (it does not move before the round's last
        update, or the values are dropped when it does): one large product instead of one
        small one per update."""
        self._round_values = None
        if self.config.double_q or not self.fused_kernels_apply("dqn", self._manual_path_applies):
            return
        head, policy = self.target.net.head, self.policy
        assert isinstance(head, DenseStack) and isinstance(policy, QNetwork)
        kernel, next_obs = head.kernel(), policy.encoder(batches.next_obs)
        with torch.no_grad():  # in chunks whose activations stay in cache
            values = torch.cat(
                [kernel.forward(part, keep=False)[0].amax(-1) for part in next_obs.split(1024)]
            )
        self._round_values = (batches.next_obs, values)

    def update_targets(self) -> None:
        super().update_targets()
        self._round_values = None

    def _next_values(self, next_obs: Tensor) -> Tensor | None:
        """``max_a Q_target(next_obs, a)`` from :meth:`begin_round`'s pass when ``next_obs`` is
        a row slice of the round's batch, else None."""
        cached = self.__dict__.get("_round_values")
        if cached is None:
            return None
        whole, values = cached
        if (
            next_obs.untyped_storage().data_ptr() != whole.untyped_storage().data_ptr()
            or not next_obs.is_contiguous()
            or next_obs.shape[1:] != whole.shape[1:]
        ):
            return None
        row = next_obs[0].numel()
        start, rem = divmod(next_obs.storage_offset() - whole.storage_offset(), row)
        if rem or start < 0 or start + next_obs.shape[0] > whole.shape[0]:
            return None
        return values[start : start + next_obs.shape[0]]

    def _manual_update(self, batch: ReplayBatch, actions: Tensor) -> dict[str, Tensor]:
        """The same step for a plain MLP Q-network, without autograd: the Huber-loss gradient
        ``clamp(q - target, -1, 1) * weight / B`` pushed through the network by hand
        (:class:`~rlkit.policies.mlp_kernel.MLPKernel`). With double Q-learning the online
        network runs once on ``obs`` and ``next_obs`` stacked."""
        policy = self.policy
        assert isinstance(policy, QNetwork) and isinstance(policy.head, DenseStack)
        assert isinstance(batch.next_obs, Tensor)  # (a flattening encoder: Box observations)
        kernel, size = policy.head.kernel(), batch.rewards.shape[0]
        with torch.no_grad():
            obs = policy.encoder(batch.obs)
            next_obs = policy.encoder(batch.next_obs)  # (a view: Identity encoder)
            target_head = self.target.net.head
            assert isinstance(target_head, DenseStack)
            next_v = None if self.config.double_q else self._next_values(batch.next_obs)
            if next_v is not None:  # from the round's single target pass
                q_all, cache = kernel.forward(obs)
            elif self.config.double_q:
                next_q = target_head.kernel().forward(next_obs, keep=False)[0]
                q_all, cache = kernel.forward(torch.cat([obs, next_obs]))
                best = q_all[size:].argmax(-1, keepdim=True)
                next_v = next_q.gather(-1, best).squeeze(-1)
                q_all, cache = q_all[:size], [[h[:size] for h in cache[0]]]
            else:
                next_v = target_head.kernel().forward(next_obs, keep=False)[0].amax(-1)
                q_all, cache = kernel.forward(obs)
            target = torch.addcmul(batch.rewards, batch.discounts, next_v)
            index = actions.unsqueeze(-1)
            q = q_all.gather(-1, index).squeeze(-1)
            errors = q - target
            huber = F.smooth_l1_loss(q, target, reduction="none")
            if self.prioritized:
                loss = (batch.weights * huber).mean()
                grad_q = errors.clamp(-1.0, 1.0).mul_(batch.weights / size)
                self.report_td_errors(batch, errors)
            else:
                loss = huber.mean()
                grad_q = errors.clamp(-1.0, 1.0).mul_(1.0 / size)
            grad_out = torch.zeros_like(q_all).scatter_(-1, index, grad_q.unsqueeze(-1))
        self.optimizer.step_manual(lambda: kernel.backward(cache, grad_out))
        return {"loss/td": loss, "train/q_mean": q.mean()}
