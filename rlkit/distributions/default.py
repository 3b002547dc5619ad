"""Pick the natural distribution family for an action space."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from rlkit.distributions.base import Distribution
from rlkit.distributions.categorical import Bernoulli, Categorical, MultiCategorical
from rlkit.distributions.gaussian import DiagGaussian


def default_distribution(action_space: spaces.Space[Any], **kwargs: Any) -> Distribution:
    """Categorical / MultiCategorical / Bernoulli / DiagGaussian by space type."""
    if isinstance(action_space, spaces.Discrete):
        return Categorical(action_space)
    if isinstance(action_space, spaces.MultiDiscrete):
        return MultiCategorical(action_space)
    if isinstance(action_space, spaces.MultiBinary):
        return Bernoulli(action_space)
    if isinstance(action_space, spaces.Box):
        return DiagGaussian(action_space, **kwargs)
    raise TypeError(
        f"no default distribution for action space {action_space!r}; supported: Discrete, "
        "MultiDiscrete, MultiBinary, Box"
    )
