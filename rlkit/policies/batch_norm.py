"""CrossQ's policy (Bhatt et al. 2024): SAC's tanh-Gaussian actor with wide critics whose layers
are batch-renormalised (:class:`~rlkit.utils.batch_renorm.BatchRenorm`).

The critics are :class:`BatchRenormEnsembleMLP`, the twin critics of
:mod:`rlkit.policies.ensemble` (one :class:`~rlkit.policies.ensemble.EnsembleLinear` per layer)
with a batch-renormalisation layer on the input and after every hidden activation, as the
authors' and Stable-Baselines-Jax's critic: ``BRN -> (Linear -> ReLU -> BRN)* -> Linear``.

Mode hygiene: the critics' normalisation layers behave differently in train mode (batch
statistics, running statistics updated) and eval mode (running statistics, nothing changes).
The policy starts with its critics in eval mode; the agent puts them in train mode for the
critic's joint forward pass only (see :class:`rlkit.agents.CrossQ`). Acting, evaluation and
export use the actor alone, which has no normalisation layers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule, count
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.ensemble import EnsembleLinear
from rlkit.policies.twin_q import PartSpec, SquashedGaussianActorCritic
from rlkit.utils.batch_renorm import BatchRenorm
from rlkit.utils.nn import activation_class


class BatchRenormEnsembleMLP(nn.Module):
    """``E`` MLPs run as one, ``[B, in]`` (or ``[E, B, in]``) -> ``[E, B, out]``, with a
    :class:`BatchRenorm` (statistics per member) on the input and after each hidden
    activation. Same call signature as :class:`~rlkit.policies.ensemble.EnsembleMLP`."""

    def __init__(
        self,
        num_members: int,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str = "relu",
        momentum: float = 0.99,
        warmup_steps: int = 100_000,
    ) -> None:
        super().__init__()
        sizes = [int(in_features), *(int(s) for s in hidden_sizes), int(out_features)]
        self.num_members = int(num_members)
        self.layers = nn.ModuleList(
            EnsembleLinear(num_members, a, b) for a, b in itertools.pairwise(sizes)
        )
        self.norms = nn.ModuleList(
            BatchRenorm(size, num_members, momentum=momentum, warmup_steps=warmup_steps)
            for size in sizes[:-1]
        )
        self.activation = activation_class(activation)()

    def forward(
        self, x: Tensor, detach_params: bool = False, members: slice | None = None
    ) -> Tensor:
        if members is not None:
            raise ValueError(
                "BatchRenormEnsembleMLP evaluates all its members at once (members=None)"
            )
        last = len(self.layers) - 1
        x = self.norms[0](x, detach_params)
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params)
            if i < last:
                x = self.norms[i + 1](self.activation(x), detach_params)
        return x


@POLICIES.register("batchnorm_actor_critic")
class BatchNormActorCritic(SquashedGaussianActorCritic):
    """SAC's policy with CrossQ's critics: :class:`BatchRenormEnsembleMLP` critics (default
    ``critic_hidden_sizes=(2048, 2048)``, the paper's width) next to the usual tanh-Gaussian
    actor (``hidden_sizes=None``: ``(256, 256)``). ``bn_momentum`` and ``bn_warmup_steps``
    configure the normalisation layers (CrossQ: 0.99 and 100_000 steps)."""

    argument_rules: ClassVar[dict[str, Rule]] = {
        "bn_momentum": Range(0, 1, high_open=True),
        "bn_warmup_steps": count(0, integer=True),
    }
    #: critic hidden sizes used when ``critic_hidden_sizes`` is None.
    default_critic_hidden: tuple[int, ...] = (2048, 2048)

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        critic_hidden_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        num_critics: int = 2,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
        bn_momentum: float = 0.99,
        bn_warmup_steps: int = 100_000,
    ) -> None:
        self.bn_momentum = float(bn_momentum)
        self.bn_warmup_steps = int(bn_warmup_steps)
        if critic_hidden_sizes is None:
            critic_hidden_sizes = self.default_critic_hidden
        super().__init__(
            observation_space, action_space, encoder, hidden_sizes, critic_hidden_sizes,
            activation, num_critics, log_std_bounds,
        )  # fmt: skip
        self.critic.eval()  # train mode only inside the critic's update (see the module doc)

    def make_critic(self, in_features: int, out_features: int) -> nn.Module:
        return BatchRenormEnsembleMLP(
            self.num_critics, in_features, self.critic_hidden_sizes, out_features,
            self.activation, self.bn_momentum, self.bn_warmup_steps,
        )  # fmt: skip


__all__ = ["BatchNormActorCritic", "BatchRenormEnsembleMLP"]
