"""TQC's policy (Kuznetsov et al. 2020): SAC's tanh-Gaussian actor with ``E`` distributional
critics, each predicting ``n_quantiles`` quantiles of the return of ``(s, a)``.

The critics are the same batched ensemble as SAC's (:class:`~rlkit.policies.ensemble.EnsembleMLP`
via :class:`~rlkit.policies.twin_q.SquashedGaussianActorCritic`) with ``n_quantiles`` outputs
each, so acting, the ``fast`` backend's kernels, export and evaluation are SAC's;
:meth:`QuantileActorCritic.q_values` is the mean of each critic's quantiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.twin_q import PartSpec, SquashedGaussianActorCritic


@POLICIES.register("quantile_actor_critic")
class QuantileActorCritic(SquashedGaussianActorCritic):
    """Tanh-Gaussian actor and ``num_critics`` quantile critics (TQC).

    :meth:`quantiles` gives ``[E, B, n_quantiles]`` for normalised actions ``[B, A]``: the
    return quantiles at the fractions ``(2i + 1) / 2N``, in no enforced order (as the paper);
    :meth:`q_values` their mean per critic, ``[E, B]``. Defaults: 5 critics of 25 quantiles (the
    paper's; sb3-contrib's policy defaults to 2 critics) and ``(256, 256)`` layers.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "n_quantiles": count(integer=True),
        "num_critics": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 5,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
        n_quantiles: int = 25,
    ) -> None:
        self.n_quantiles = int(n_quantiles)  # read by critic_out_dim while the critics are built
        super().__init__(
            observation_space,
            action_space,
            encoder,
            hidden_sizes,
            critic_hidden_sizes,
            activation,
            num_critics,
            log_std_bounds,
        )

    def critic_out_dim(self) -> int:
        return self.n_quantiles

    def quantiles(
        self,
        features: Tensor,
        actions: Tensor,
        detach_params: bool = False,
        members: slice | None = None,
    ) -> Tensor:
        """Every critic's quantiles ``[E, B, n_quantiles]`` at normalised ``actions`` (see
        :meth:`~rlkit.policies.twin_q.OffPolicyActorCritic.q_values` for the options)."""
        out: Tensor = self.critic(torch.cat([features, actions], dim=-1), detach_params, members)
        return out

    def q_values(
        self,
        features: Tensor,
        actions: Tensor | None = None,
        detach_params: bool = False,
        members: slice | None = None,
    ) -> Tensor:
        """The mean of each critic's quantiles: ``[E, B]``."""
        if actions is None:
            raise ValueError(f"{type(self).__name__}.q_values needs actions")
        return self.quantiles(features, actions, detach_params, members).mean(-1)


__all__ = ["QuantileActorCritic"]
