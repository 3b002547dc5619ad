"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016), as TD3 without its three tricks."""

from __future__ import annotations

import dataclasses

from rlkit.prototypes import AGENTS

from .td3 import TD3, TD3Config


@dataclasses.dataclass
class DDPGConfig(TD3Config):
    """DDPG hyperparameters (Stable-Baselines3's): one critic, actor and targets updated every
    step, no target policy smoothing. Exploration is Gaussian (``action_noise``); pass a policy
    with :class:`~rlkit.distributions.OrnsteinUhlenbeckNoise` for the paper's OU process."""

    #: critic updates per actor (and target) update (DDPG: every update).
    policy_delay: int = 1
    #: std of the target-action noise (0: no target policy smoothing).
    target_policy_noise: float = 0.0
    #: clip of the target-action noise (no effect without target_policy_noise).
    target_noise_clip: float = 0.0


@AGENTS.register("ddpg")
class DDPG(TD3):
    """DDPG: a deterministic actor ascending a single critic ``Q(s, mu(s))``, whose target is
    ``r + g * Q'(s', mu'(s'))`` with Polyak-averaged target networks."""

    Config = DDPGConfig
    config: DDPGConfig
    num_critics = 1
