"""REINFORCE with a learned baseline (Williams 1992, "Simple Statistical Gradient-Following
Algorithms for Connectionist Reinforcement Learning")."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium.vector import VectorEnv
from torch import nn

from rlkit.config.rules import OneOf, Rule
from rlkit.losses import EntropyBonus, LossTerm, PolicyGradient, ValueLoss
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig


@dataclasses.dataclass
class REINFORCEConfig(OnPolicyConfig):
    """REINFORCE hyperparameters (rlkit's own defaults): long rollouts that hold whole CartPole
    episodes, one full-batch Adam step per rollout, Monte-Carlo returns."""

    #: rollout length per env (long enough to hold whole CartPole episodes).
    num_steps: int = 500
    #: minibatch size (samples); larger than any rollout: one full batch.
    batch_size: int = 1_000_000  # always the whole rollout
    #: passes over each rollout (one full-batch Adam step).
    num_epochs: int = 1
    #: learning rate of the Adam optimizer (annealed to 0 when anneal_lr).
    lr: float = 1e-3
    #: Monte-Carlo returns (fixed: lambda < 1 would make this A2C).
    gae_lambda: float = 1.0
    #: global gradient-norm clip; None disables.
    max_grad_norm: float | None = None
    #: subtract a learned state value from the return (and train it); False: the advantage is
    #: the plain discounted return.
    baseline: bool = True

    rules: ClassVar[dict[str, Rule]] = {
        "gae_lambda": OneOf((1.0,), note="REINFORCE uses Monte-Carlo returns"),
    }


@AGENTS.register("reinforce")
class REINFORCE(OnPolicyAgent):
    """REINFORCE: ``-mean(A log pi(a|s))`` on the whole rollout, one gradient step per rollout.

    Returns are Monte-Carlo, ``G_t = r_t + gamma G_{t+1}`` within an episode (``gae_lambda``
    1). Bootstrapping happens only where the episode does not end inside the rollout: where the
    rollout is cut (``G_T = V(s_T)``) and where an episode is truncated (``gamma V(final_obs)``
    added to its last reward); a terminated episode is never bootstrapped (gymnasium 1.x:
    ``terminated`` ends the return, ``truncated`` does not). With ``baseline`` the advantage is
    ``G_t - V(s_t)`` and ``V`` is fitted to ``G_t`` (``ValueLoss``); without it ``V`` is held
    at 0 (the policy's value head is zeroed and never trained), so there is no bootstrap and
    the advantage is ``G_t`` itself.
    """

    Config = REINFORCEConfig
    config: REINFORCEConfig

    def __init__(self, env: VectorEnv, config: Any = None, **kwargs: Any) -> None:
        super().__init__(env, config, **kwargs)
        if not self.config.baseline:
            head = getattr(self.policy, "value_head", None)
            if not isinstance(head, nn.Linear):
                raise TypeError(
                    "REINFORCE: baseline=False needs a policy with a linear value_head to hold "
                    f"at 0, got {type(self.policy).__name__}"
                )
            with torch.no_grad():  # no value term trains it, so V stays 0
                head.weight.zero_()
                head.bias.zero_()

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        value = [ValueLoss(cfg.vf_coef)] if cfg.baseline else []
        return [PolicyGradient(), *value, EntropyBonus(cfg.ent_coef)]


__all__ = ["REINFORCE", "REINFORCEConfig"]
