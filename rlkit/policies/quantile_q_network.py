"""Quantile Q-network (QR-DQN, Dabney et al. 2018): the return of each action as ``N`` quantiles.

Acting is greedy on the quantiles' mean, so evaluation, export and every ``QPolicy`` consumer
treat it like a plain Q-network; the agent trains the quantiles themselves
(:class:`rlkit.losses.QuantileHuberLoss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.q_network import ActionValueNetwork
from rlkit.types import Obs


@POLICIES.register("quantile_q_network")
class QuantileQNetwork(ActionValueNetwork):
    """Encoder and an MLP head with ``num_actions * n_quantiles`` outputs (with the dueling and
    noisy options of :class:`~rlkit.policies.q_network.ActionValueNetwork`).

    :meth:`quantiles` gives ``[B, num_actions, n_quantiles]`` (the quantile values at the
    fractions ``(2i + 1) / 2N``, in no enforced order, as in the paper); :meth:`q_values` is
    their mean. ``hidden_sizes=None`` picks ``(64, 64)`` for vector observations and no trunk
    for images, like :class:`~rlkit.policies.q_network.QNetwork`.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        **ActionValueNetwork.argument_rules,
        "n_quantiles": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        n_quantiles: int = 200,
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        self.n_quantiles = int(n_quantiles)
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            activation,
            dueling=dueling,
            noisy=noisy,
            atoms=self.n_quantiles,
        )

    def quantiles(self, obs: Obs) -> Tensor:
        """Return quantiles of every action: ``[B, num_actions, n_quantiles]``."""
        return self.action_values(self.encoder(obs))

    def q_values(self, obs: Obs) -> Tensor:
        return self.quantiles(obs).mean(-1)


__all__ = ["QuantileQNetwork"]
