"""A weighted mix of several exploration bonuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import ListOf, Rule, non_negative
from rlkit.configurable import build_primitive
from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch


@INTRINSIC_REWARDS.register("combined")
class Combined(IntrinsicReward):
    """Bonus = ``sum_i weights[i] * modules[i].reward(batch, step)``.

    Each sub-module keeps its own normalisation and weight schedule, so modules with different
    scales mix sensibly; this module's own ``reward_norm`` (default ``"none"``) and ``coef`` /
    ``coef_decay`` then apply to the sum. ``modules`` may hold module objects, registered ids
    (``"rnd"``) or spec dicts (``{"id": "ngu", "k": 5}``); ids and specs are built for this
    module's spaces. The default mixes a global bonus (RND) with an episodic one (E3B), the
    pairing Henaff et al. 2023 ("A Study of Global and Episodic Bonuses for Exploration in
    Contextual MDPs") found robust where either alone can fail. ``weights`` defaults to all
    ones. :meth:`update`, :meth:`reset_episodes` and :meth:`optimizers` reach every sub-module
    (metric and optimizer names are prefixed with ``"<index>_<id>"``), and the sub-modules'
    weights, statistics and optimizers are saved with the agent.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "weights": ListOf(non_negative(), none=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        modules: Sequence[IntrinsicReward | str | Mapping[str, Any]] = ("rnd", "e3b"),
        weights: Sequence[float] | None = None,
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "none",
    ) -> None:
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        if isinstance(modules, str | Mapping) or not isinstance(modules, Sequence) or not modules:
            raise ValueError(
                "Combined: modules must be a non-empty list of intrinsic rewards (objects, ids "
                f"or spec dicts), got {modules!r}"
            )
        built: list[IntrinsicReward] = []
        for i, spec in enumerate(modules):
            module = build_primitive(
                "intrinsic_reward",
                spec,
                IntrinsicReward,
                f"Combined(modules[{i}])",
                observation_space=observation_space,
                action_space=action_space,
            )
            assert module is not None
            built.append(module)
        if weights is None:
            weights = [1.0] * len(built)
        if len(weights) != len(built):
            raise ValueError(
                f"Combined: got {len(weights)} weights for {len(built)} modules; give one each"
            )
        self.parts = nn.ModuleList(built)
        self.weights = [float(w) for w in weights]
        self.names = [
            f"{i}_{m.registry_id or type(m).__name__.lower()}" for i, m in enumerate(built)
        ]
        self._step = 0

    def members(self) -> list[IntrinsicReward]:
        """The sub-modules, in order."""
        return [m for m in self.parts if isinstance(m, IntrinsicReward)]

    @torch.no_grad()
    def reward(self, batch: TransitionBatch, step: int) -> Tensor:
        self._step = int(step)
        return super().reward(batch, step)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        """The weighted sum of the sub-modules' normalised, scheduled bonuses (at the step of
        the last :meth:`reward` call)."""
        total = torch.zeros(batch.dones.shape, device=batch.dones.device)
        for weight, module in zip(self.weights, self.members(), strict=True):
            total = total + weight * module.reward(batch, self._step)
        return total

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name, module in zip(self.names, self.members(), strict=True):
            metrics.update({f"{name}/{k}": v for k, v in module.update(batch).items()})
        return metrics

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            f"{name}.{key}": opt
            for name, module in zip(self.names, self.members(), strict=True)
            for key, opt in module.optimizers().items()
        }

    def reset_episodes(self, env_mask: Tensor) -> None:
        for module in self.members():
            module.reset_episodes(env_mask)
