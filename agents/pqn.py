"""Parallelised Q-Network (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning"):
Q-learning on short on-policy rollouts of many envs, without replay or target network."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import OneOf, Rule, Sizes, unit
from rlkit.distributions.base import action_mask_of
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, TDLoss
from rlkit.losses.q_learning import TD_KINDS
from rlkit.policies.base import Policy
from rlkit.policies.q_network import QNetwork, QPolicy
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig
from rlkit.prototypes.learning import PolicyEvaluation
from rlkit.schedules import Linear
from rlkit.spaces import is_image_space
from rlkit.storages.rollout import RolloutBatch
from rlkit.types import Obs


@dataclasses.dataclass
class PQNConfig(OnPolicyConfig):
    """PQN hyperparameters; the defaults are CleanRL's ``pqn.py`` (its CartPole setting;
    ``batch_size`` 128 is its 4 minibatches of 4 x 128 samples). ``gae_lambda``, ``ent_coef``
    and ``vf_coef`` do not apply."""

    #: minibatch size (samples).
    batch_size: int = 128
    #: passes over each rollout.
    num_epochs: int = 4
    #: learning rate of the RAdam optimizer (annealed to 0 when anneal_lr).
    lr: float = 2.5e-4
    #: linearly anneal the learning rate to 0 over ``train(total_steps)``.
    anneal_lr: bool = True
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = 10.0
    #: normalise advantages (the TD loss regresses on returns, not advantages).
    normalize_advantages: bool = False
    #: lambda of the Q(lambda) returns.
    q_lambda: float = 0.65
    #: epsilon-greedy: from initial to final eps linearly over this fraction of train()'s steps.
    exploration_fraction: float = 0.5
    #: epsilon at the start of training.
    exploration_initial_eps: float = 1.0
    #: epsilon after exploration_fraction of the steps (kept until the end).
    exploration_final_eps: float = 0.05
    #: the regression loss: "mse" (CleanRL), "half_mse" (purejaxql) or "huber".
    loss: str = "mse"
    #: hidden sizes of the default Q-network; None: (120, 84) on vectors, none after a CNN.
    hidden_sizes: list[int] | None = None
    #: LayerNorm after every hidden layer of the default Q-network (the paper's stabiliser).
    layer_norm: bool = True

    rules: ClassVar[dict[str, Rule]] = {
        "q_lambda": unit(),
        "exploration_fraction": unit(),
        "exploration_initial_eps": unit(),
        "exploration_final_eps": unit(),
        "loss": OneOf(TD_KINDS),
        "hidden_sizes": Sizes(none=True),
    }


@AGENTS.register("pqn")
class PQN(OnPolicyAgent):
    """PQN: epsilon-greedy rollouts of ``num_steps`` x ``num_envs`` recording
    ``max_a Q(s, a)``, Q(lambda) returns computed backwards over each rollout
    (:func:`rlkit.storages.q_lambda_returns`; truncated episodes bootstrap on their final
    observation, terminated ones do not), then ``num_epochs`` passes of minibatch regression
    of ``Q(s, a)`` on them, with gradient clipping and RAdam (as CleanRL and purejaxql) whose
    learning rate anneals to 0.

    The on-policy loop is :class:`OnPolicyAgent`'s; the policy is a :class:`QPolicy` (default:
    :class:`QNetwork` with LayerNorm). Evaluation and export act greedily.
    """

    Config = PQNConfig
    config: PQNConfig
    action_spaces = (spaces.Discrete,)
    policy_parts = ("encoder",)
    policy: QPolicy

    def build_actor_critic(self, policy: Any, encoder: Any, distribution: Any) -> Any:
        """The Q-policy: ``policy`` as given (object, id or spec), or :meth:`default_policy`
        around ``encoder``."""
        name, obs_space = type(self).__name__, self.observation_space
        if distribution is not None:
            raise ValueError(f"{name} acts epsilon-greedily on Q-values; it takes no distribution=")
        if policy is not None and encoder is not None:
            raise ValueError(f"{name}: pass either policy= or encoder=, not both")
        spaces_ = {"observation_space": obs_space, "action_space": self.action_space}
        built = self.build_primitive("policy", policy, Policy, **spaces_)
        if built is None:
            enc = self.build_primitive("encoder", encoder, Encoder, observation_space=obs_space)
            built = self.default_policy(enc)
        if not isinstance(built, QPolicy):
            raise TypeError(f"{name} needs a QPolicy, got {type(built).__name__}")
        return built

    def default_policy(self, encoder: Encoder | None) -> QNetwork:
        cfg, obs_space = self.config, self.observation_space
        sizes = cfg.hidden_sizes
        if sizes is None and not is_image_space(obs_space):
            sizes = [120, 84]
        return QNetwork(obs_space, self.action_space, encoder, sizes, layer_norm=cfg.layer_norm)

    def loss_terms(self) -> list[LossTerm]:
        return [TDLoss(self.config.loss)]

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.RAdam([self.flat_params], lr=self.config.lr)

    def exploration_schedule(self) -> Linear:
        """Epsilon as a function of the env step, for the current ``train(total_steps)``."""
        cfg = self.config
        duration = max(1.0, cfg.exploration_fraction * max(self._target_steps, 1))
        return Linear(cfg.exploration_initial_eps, cfg.exploration_final_eps, duration)

    def explore(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Epsilon-greedy zero-based actions, zero log-probs and ``max_a Q(s, a)``; with an
        ``"action_mask"`` the random, greedy and max actions are legal ones."""
        q, mask = self.policy.legal_q_values(obs), action_mask_of(obs)
        num_envs, gen = q.shape[0], self._generator
        explore = torch.rand(num_envs, generator=gen) < self.exploration_schedule()(
            self.global_step
        )
        if mask is None:
            random = torch.randint(0, q.shape[-1], (num_envs,), generator=gen)
        else:  # uniform over the legal actions
            scores = torch.rand(q.shape, generator=gen).masked_fill(mask.cpu() < 0.5, -1.0)
            random = scores.argmax(-1)
        actions = torch.where(explore.to(q.device), random.to(q.device), q.argmax(-1))
        value = q.amax(-1)  # 0 for a row without legal actions (never -inf)
        return actions, torch.zeros_like(value), value.masked_fill(torch.isneginf(value), 0.0)

    def compute_returns(self, last_value: Tensor) -> None:
        cfg = self.config  # with values max_a Q, the storage's GAE returns are Q(lambda)'s
        self.storage.compute_returns_and_advantages(last_value, cfg.gamma, cfg.q_lambda)

    def evaluate_minibatch(self, mb: RolloutBatch, need_entropy: bool = True) -> PolicyEvaluation:
        """``q``: ``Q(s, a)`` of the stored actions, ``target``: their Q(lambda) returns; also
        ``log_prob``, ``entropy`` (of ``softmax(Q)``) and ``value`` (``max_a Q``) for terms
        written against the on-policy outputs."""
        q_all = self.policy.q_values(mb.obs)
        log_probs = torch.log_softmax(q_all, dim=-1)
        index = mb.actions.long().unsqueeze(-1)
        outputs = {
            "q": q_all.gather(-1, index).squeeze(-1),
            "target": mb.returns,
            "log_prob": log_probs.gather(-1, index).squeeze(-1),
            "value": q_all.amax(-1),
        }
        if need_entropy:
            outputs["entropy"] = -(log_probs.exp() * log_probs).sum(-1)
        return PolicyEvaluation(outputs)

    def iteration(self) -> dict[str, float]:
        metrics = super().iteration()
        metrics["train/epsilon"] = self.exploration_schedule()(self.global_step)
        return metrics
