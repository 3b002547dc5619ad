"""Building an agent's primitives from what the user passed: an object, a registered id or an
``{"id": ...}`` spec, with the env's spaces filled in."""

from __future__ import annotations

from typing import Any

from rlkit.augmentations.base import Augmentation
from rlkit.configurable import build_primitive
from rlkit.distributions.base import Distribution
from rlkit.encoders.base import Encoder
from rlkit.policies.actor_critic import ActorCritic
from rlkit.policies.base import ActorCriticPolicy, Policy
from rlkit.rewards.base import IntrinsicReward
from rlkit.spaces import is_image_space


def actor_critic(
    owner: str,
    observation_space: Any,
    action_space: Any,
    policy: Any,
    encoder: Any,
    distribution: Any,
) -> ActorCriticPolicy:
    """``policy`` as given (object, id or spec), or the default :class:`ActorCritic` built around
    ``encoder`` / ``distribution``; refuses both at once and non-actor-critics."""
    if policy is not None and (encoder is not None or distribution is not None):
        raise ValueError(
            f"{owner}: pass either policy= or encoder=/distribution= (which build the default "
            "policy), not both"
        )
    built = build_primitive(
        "policy", policy, Policy, owner, observation_space=observation_space,
        action_space=action_space,
    )  # fmt: skip
    if built is None:
        built = ActorCritic(
            observation_space,
            action_space,
            encoder=build_primitive(
                "encoder", encoder, Encoder, owner, observation_space=observation_space
            ),
            distribution=build_primitive(
                "distribution", distribution, Distribution, owner, action_space=action_space
            ),
        )
    if not isinstance(built, ActorCriticPolicy):
        raise TypeError(f"{owner} needs an ActorCriticPolicy, got {type(built).__name__}")
    return built


def augmentation(owner: str, value: Any) -> Augmentation | None:
    """The augmentation primitive (or None)."""
    return build_primitive("augmentation", value, Augmentation, owner)


def intrinsic_reward(
    owner: str, value: Any, observation_space: Any, action_space: Any
) -> IntrinsicReward | None:
    """The intrinsic-reward primitive (or None), built for the env's spaces."""
    return build_primitive(
        "intrinsic_reward", value, IntrinsicReward, owner, observation_space=observation_space,
        action_space=action_space,
    )  # fmt: skip


def has_image(space: Any) -> bool:
    """Whether a (Dict) observation space holds an image."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return any(is_image_space(s) for s in space.spaces.values())
    return is_image_space(space)


__all__ = ["actor_critic", "augmentation", "has_image", "intrinsic_reward"]
