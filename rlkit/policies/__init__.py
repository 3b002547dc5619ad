"""Policies: encoder + heads + distribution, with the acting path used everywhere."""

from rlkit.policies.actor_critic import ActorCritic, check_distribution, check_encoder
from rlkit.policies.base import (
    POLICIES,
    ActorCriticOutput,
    ActorCriticPolicy,
    Policy,
)

__all__ = [
    "POLICIES",
    "ActorCritic",
    "ActorCriticOutput",
    "ActorCriticPolicy",
    "Policy",
    "check_distribution",
    "check_encoder",
]
