"""DrQ-v2 (Yarats et al. 2021, "Mastering Visual Continuous Control: Improved Data-Augmented
Reinforcement Learning"). Losses, update order and defaults follow the authors' code
(github.com/facebookresearch/drqv2, ``drqv2.py`` and ``cfgs/config.yaml``)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor

from rlkit.augmentations.base import Augmentation
from rlkit.augmentations.basic import RandomShift
from rlkit.config.rules import Rule, Satisfies, count, positive
from rlkit.encoders.base import Encoder
from rlkit.losses import DeterministicActorLoss, LossTerm, TDLoss, clipped_double_q, td_target
from rlkit.policies.drqv2 import DrQv2ActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.schedules import Schedule, parse_schedule
from rlkit.spaces import is_image_space
from rlkit.storages.replay import ReplayBatch, ReplayStorage
from rlkit.types import EnvActions, Obs


@dataclasses.dataclass
class DrQv2Config(OffPolicyConfig):
    """DrQ-v2 hyperparameters (the authors' defaults; steps are env steps of this env, so with
    DMC's action repeat of 2 their 4000 seed frames are 2000 steps here)."""

    #: replay capacity; the pixel store keeps each frame once (~3 KB per 3x32x32 step).
    buffer_size: int = 100_000
    #: uniformly random actions (and no updates) for the first ``learning_starts`` steps.
    learning_starts: int = 2000
    #: minibatch size (transitions per update).
    batch_size: int = 256
    #: update every ``train_freq`` env steps (DrQ-v2's ``update_every_steps``).
    train_freq: int = 2
    #: discount factor of future rewards.
    gamma: float = 0.99
    #: soft update coefficient of the critic target (``critic_target_tau``).
    tau: float = 0.01
    #: n-step returns (the authors' 3).
    n_step: int = 3
    #: learning rate of the actor's and the critic's Adam optimizers.
    lr: float = 1e-4
    #: width of the actor's and the critics' LayerNorm trunks.
    feature_dim: int = 50
    #: exploration std as a schedule of env steps (parsed by rlkit.schedules.parse_schedule);
    #: the paper uses linear(1,0.1,N) with N = 100k (easy), 500k (medium), 2M (hard) frames.
    std_schedule: str = "linear(1.0,0.1,500000)"
    #: clip of the exploration noise in the actor and critic updates (``stddev_clip``).
    std_clip: float = 0.3
    #: frames stacked on the channel axis of each observation (the pixel store keeps each once).
    frame_stack: int = 3
    #: pad of the default RandomShift augmentation.
    shift_pad: int = 4

    rules: ClassVar[dict[str, Rule]] = {
        "feature_dim": count(),
        "std_schedule": Satisfies(parse_schedule, "a schedule ('0.2', 'linear(1.0,0.1,500000)')"),
        "std_clip": positive(),
        "frame_stack": count(),
        "shift_pad": count(0),
    }


@AGENTS.register("drqv2")
class DrQv2(OffPolicyAgent):
    """DrQ-v2: DDPG-style actor-critic on augmented pixels with n-step returns.

    Each update (every ``train_freq`` steps) augments ``obs`` and ``next_obs`` with independent
    random shifts, encodes both (``next_obs`` without gradient), regresses the twin critics on
    ``r + g^n * min_i Q'_i(s', a')`` with ``a' ~ TruncatedNormal(mu(s'), std, clip)`` (the
    encoder is trained by this loss only), then moves the actor to maximise ``min_i Q_i(s, a)``
    for ``a ~ TruncatedNormal(mu(s), std, clip)`` on detached features, and soft-updates the
    critic target (its trunk included; the target reads the online encoder's features). ``std``
    follows the explicit schedule :attr:`std_schedule` of env steps.

    Needs uint8 image observations ``(frame_stack * C, H, W)`` and a Box action space with
    finite bounds. The default storage is a :class:`~rlkit.storages.ReplayStorage` with a
    :class:`~rlkit.storages.PixelStore` of ``frame_stack`` frames and ``n_step`` returns.
    """

    Config = DrQv2Config
    config: DrQv2Config
    observation_spaces = (spaces.Box,)
    action_spaces = (spaces.Box,)
    policy_class = DrQv2ActorCritic
    policy: DrQv2ActorCritic
    augmentation: Augmentation | None

    def __init__(self, env: VectorEnv, config: Any = None, **kwargs: Any) -> None:
        space = getattr(env, "single_observation_space", None)
        if space is not None and not is_image_space(space):
            raise TypeError(
                "DrQv2 learns from pixels: it needs uint8 image observations Box(0, 255, "
                f"(frame_stack * C, H, W), uint8), got {space!r}; for state observations use "
                "TD3, DDPG or SAC"
            )
        super().__init__(env, config, **kwargs)

    # ----------------------------------------------------------------- construction hooks
    def default_policy(self, encoder: Encoder | None) -> DrQv2ActorCritic:
        cfg = self.config
        return DrQv2ActorCritic(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            feature_dim=cfg.feature_dim,
            hidden_sizes=cfg.hidden_sizes if cfg.hidden_sizes is not None else (1024, 1024),
            std=parse_schedule(cfg.std_schedule)(10**12),  # acting std outside training
        )

    def _build_storage(self, storage: ReplayStorage | str | dict[str, Any] | None) -> ReplayStorage:
        if storage is None:
            shape = tuple(self.observation_space.shape or (0,))
            stack = self.config.frame_stack
            if shape[0] % stack:
                raise ValueError(
                    f"DrQv2: frame_stack={stack} does not divide the {shape[0]} channels of "
                    f"the observations {shape}; set frame_stack to the number of stacked frames"
                )
            storage = {"id": "replay", "store": {"id": "pixel", "stack_size": stack}}
        return super()._build_storage(storage)

    def setup(self) -> None:
        policy = self.policy
        if self.augmentation is None:  # DrQ-v2's random shift; pass "identity" to turn it off
            self.augmentation = RandomShift(pad=self.config.shift_pad).to(self.device)
        # DrQ-v2 steps separate Adams for the encoder and the critic on the critic loss, with
        # the same learning rate: one Adam over both is the same update.
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.critic_target = self.add_target("critic_target", policy.critic)
        self.std_schedule: Schedule = parse_schedule(self.config.std_schedule)

    # ----------------------------------------------------------------- acting
    def explore(self, obs: Obs) -> EnvActions:
        """Sample ``TruncatedNormal(mu(s), std(step))`` without noise clipping (as DrQ-v2)."""
        policy = self.policy
        dist = policy.action_distribution(
            policy.features(obs), std=self.std_schedule(self.global_step)
        )
        return self._to_env_actions(policy.to_env(dist.sample()))

    def iteration_metrics(self) -> dict[str, float]:
        return {"train/std": self.std_schedule(self.global_step)}

    # ----------------------------------------------------------------- learning
    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {
            "critic": [TDLoss("mse", name="critic")],
            "actor": [DeterministicActorLoss("min")],
        }

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, policy = self.config, self.policy
        std = self.std_schedule(self.global_step)
        features = policy.features(batch.obs)
        with torch.no_grad():
            next_features = policy.features(batch.next_obs)
            next_actions = policy.action_distribution(next_features, std, cfg.std_clip).sample()
            next_q = self.critic_target(next_features, next_actions)
            td = td_target(batch.rewards, batch.discounts, clipped_double_q(next_q))
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)

        actor_features = features.detach()
        dist = policy.action_distribution(actor_features, std, cfg.std_clip)
        q_pi = policy.q_values(actor_features, dist.rsample(), detach_params=True)
        self.clip_and_step(self.loss("actor", {"q": q_pi}), self.actor_optimizer)
        return {"train/target_q": td.mean()}


__all__ = ["DrQv2", "DrQv2Config"]
