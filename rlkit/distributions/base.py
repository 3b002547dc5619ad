"""Distribution contract: a stateless family that turns head outputs into action distributions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import PAIR, Range, Rule, count, finite, non_negative, positive
from rlkit.configurable import Configurable
from rlkit.registry import Registry


class ActionDistribution(ABC):
    """A batch of action distributions (one per row), produced by :class:`Distribution`.

    ``log_prob`` and ``entropy`` return one value per batch row (summed over action dims).
    """

    @abstractmethod
    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per row (no gradient)."""

    def rsample(self) -> Tensor:
        """Reparameterised sample; only continuous families define it."""
        raise TypeError(f"{type(self).__name__} has no reparameterised sample")

    @abstractmethod
    def log_prob(self, actions: Tensor) -> Tensor:
        """Log-density of ``actions``: shape ``[B]``."""

    @abstractmethod
    def entropy(self) -> Tensor:
        """Entropy per row: shape ``[B]``."""

    @abstractmethod
    def mode(self) -> Tensor:
        """The most likely action per row (the deterministic acting path)."""

    def kl(self, other: ActionDistribution) -> Tensor:
        """KL(self || other) per row, where the family has a closed form."""
        raise TypeError(f"{type(self).__name__} has no closed-form KL")


class Distribution(Configurable, nn.Module, ABC):
    """A family of action distributions for one action space.

    The policy head outputs ``num_params`` numbers per row; calling the family on them returns an
    :class:`ActionDistribution`. A family may own learnable parameters (a state-independent
    log-std) but never hidden state advanced by sampling: noise schedules are explicit arguments.
    """

    kind = "distribution"
    #: arguments shared by the families (each applies where the class takes it).
    argument_rules: ClassVar[dict[str, Rule]] = {
        "log_std_init": finite(),
        "log_std_bounds": PAIR,
        "sigma": non_negative(),
        "noise_clip": non_negative(none=True),
        "num_envs": count(integer=True),
        "theta": non_negative(),
        "dt": positive(),
        "mu": finite(),
        "eps": Range(0, 1, low_open=True, high_open=True),
        "std": positive(none=True),
        "clip": positive(none=True),
    }

    def __init__(self, action_space: spaces.Space[Any]) -> None:
        super().__init__()
        self.action_space = action_space

    @property
    @abstractmethod
    def num_params(self) -> int:
        """How many outputs per row the policy head must produce."""

    @abstractmethod
    def forward(self, params: Tensor) -> ActionDistribution:
        """Wrap head outputs ``[B, num_params]`` in a distribution object."""

    @property
    @abstractmethod
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one raw action as stored in a rollout (e.g. ``()`` for Discrete)."""

    @property
    def action_dtype(self) -> torch.dtype:
        """Torch dtype of raw actions."""
        return torch.float32

    def postprocess(self, actions: Tensor) -> Tensor:
        """Map raw sampled actions to what the env accepts (offsets, clipping). Export uses it."""
        return actions

    @property
    def supports_action_mask(self) -> bool:
        """Whether :meth:`masked` can rule out actions (the categorical families)."""
        return False

    def masked(self, params: Tensor, mask: Tensor | None) -> ActionDistribution:
        """The distribution of ``params`` with the actions where ``mask`` is 0 given zero
        probability (``mask`` ``[B, num_params]``, 1 = legal; None = all legal). Policies call
        it with the observation's ``"action_mask"``; a family without masks refuses one."""
        if mask is None:
            return self(params)
        raise TypeError(
            f"{type(self).__name__} cannot apply an action mask (the observation has "
            "'action_mask'); masks need a categorical action distribution"
        )

    #: whether the family reads the actor's features as well as the head's outputs (gSDE):
    #: only a policy that calls :meth:`bind_features` and :meth:`from_features` can own it.
    needs_features: ClassVar[bool] = False

    def bind_features(self, feature_dim: int) -> None:
        """Told once, by the policy that owns the family, the width of the actor features its
        head reads (a family that draws on them builds its parameters here). Default: nothing."""

    def from_features(
        self, params: Tensor, features: Tensor, mask: Tensor | None = None
    ) -> ActionDistribution:
        """The distribution of head outputs ``params`` computed from actor ``features``
        ``[B, feature_dim]`` (what actor-critics call); default :meth:`masked`, ignoring them."""
        return self.masked(params, mask)

    def __call__(self, params: Tensor) -> ActionDistribution:  # typed shortcut for forward
        return self.forward(params)


#: the logit given to masked-out actions: exp() is exactly 0 in float32 and, unlike -inf,
#: ``0 * logit`` stays 0 in entropies.
MASKED_LOGIT = -1e8


def mask_logits(params: Tensor, mask: Tensor) -> Tensor:
    """``params`` with :data:`MASKED_LOGIT` where ``mask`` is 0 (differentiable elsewhere)."""
    if mask.shape != params.shape:
        raise ValueError(
            f"action mask of shape {tuple(mask.shape)} does not match the logits' "
            f"{tuple(params.shape)}"
        )
    return params.masked_fill(mask < 0.5, MASKED_LOGIT)


def action_mask_of(obs: Any) -> Tensor | None:
    """The ``"action_mask"`` entry of a dict observation (PettingZoo's and Gymnasium's
    convention for legal actions), else None."""
    if isinstance(obs, dict):
        mask = obs.get("action_mask")
        return mask if isinstance(mask, Tensor) else None
    return None


DISTRIBUTIONS: Registry[Distribution] = Registry("distribution", Distribution)
