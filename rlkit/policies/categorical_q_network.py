"""Categorical Q-network (C51, Bellemare et al. 2017): each action's return as a distribution
over a fixed, evenly spaced support of ``n_atoms`` values in ``[v_min, v_max]``.

Acting is greedy on the distributions' means, so evaluation, export and every ``QPolicy``
consumer treat it like a plain Q-network; the agent trains the distributions
(:class:`rlkit.losses.CategoricalLoss` against :func:`rlkit.losses.categorical_projection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Range, Rule, count
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.q_network import ActionValueNetwork
from rlkit.types import Obs


@POLICIES.register("categorical_q_network")
class CategoricalQNetwork(ActionValueNetwork):
    """Encoder and an MLP head with ``num_actions * n_atoms`` logits (with the dueling and noisy
    options of :class:`~rlkit.policies.q_network.ActionValueNetwork`; dueling combines the
    logits per atom, as Rainbow).

    :meth:`log_probs` gives ``[B, num_actions, n_atoms]`` log-probabilities over
    :attr:`support`; :meth:`q_values` is each distribution's mean. ``hidden_sizes=None`` picks
    ``(64, 64)`` for vector observations and no trunk for images.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        **ActionValueNetwork.argument_rules,
        "n_atoms": count(minimum=2, integer=True),
        "v_min": Range(),
        "v_max": Range(),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        n_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
        dueling: bool = False,
        noisy: float = 0.0,
    ) -> None:
        if not float(v_min) < float(v_max):
            raise ValueError(
                f"{type(self).__name__}: v_min must be < v_max, got v_min={v_min}, v_max={v_max}"
            )
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            activation,
            dueling=dueling,
            noisy=noisy,
            atoms=int(n_atoms),
        )
        self.n_atoms = int(n_atoms)
        self.v_min, self.v_max = float(v_min), float(v_max)
        self.register_buffer("support", torch.linspace(self.v_min, self.v_max, self.n_atoms))

    support: Tensor

    def log_probs(self, obs: Obs) -> Tensor:
        """Log-probabilities over the support for every action: ``[B, num_actions, n_atoms]``."""
        return self.action_values(self.encoder(obs)).log_softmax(-1)

    def q_values(self, obs: Obs) -> Tensor:
        return (self.log_probs(obs).exp() * self.support).sum(-1)


__all__ = ["CategoricalQNetwork"]
