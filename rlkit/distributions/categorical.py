"""Categorical families: Discrete and MultiDiscrete action spaces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlkit.distributions.base import (
    DISTRIBUTIONS,
    ActionDistribution,
    Distribution,
    mask_logits,
)
from rlkit.spaces import check_space


class CategoricalDist(ActionDistribution):
    """Independent categoricals over the last axis of ``logits`` ``[B, ..., K]``.

    Extra middle axes (``[B, D, K]``) are summed in ``log_prob``/``entropy``.
    """

    def __init__(self, logits: Tensor) -> None:
        self.logits = torch.log_softmax(logits, dim=-1)

    @property
    def probs(self) -> Tensor:
        return self.logits.exp()

    def _reduce(self, x: Tensor) -> Tensor:
        return x.flatten(1).sum(-1) if x.dim() > 1 else x

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        # Gumbel-max: argmax(logits + Gumbel noise) is an exact categorical draw, and costs
        # fewer kernel launches than multinomial on small batches.
        with torch.no_grad():
            exp_noise = torch.empty_like(self.logits).exponential_(generator=generator)
            return (self.logits - exp_noise.log()).argmax(-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        picked = self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return self._reduce(picked)

    def entropy(self) -> Tensor:
        return self._reduce(-(self.probs * self.logits).sum(-1))

    def mode(self) -> Tensor:
        return self.logits.argmax(-1)

    def kl(self, other: ActionDistribution) -> Tensor:
        if not isinstance(other, CategoricalDist):
            return super().kl(other)
        return self._reduce((self.probs * (self.logits - other.logits)).sum(-1))


class MultiCategoricalDist(ActionDistribution):
    """One categorical per action dimension with possibly different sizes."""

    def __init__(self, logits: Tensor, nvec: list[int]) -> None:
        self.parts = [CategoricalDist(chunk) for chunk in torch.split(logits, nvec, dim=-1)]

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack([p.sample(generator) for p in self.parts], dim=-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return torch.stack(
            [p.log_prob(a) for p, a in zip(self.parts, actions.unbind(-1), strict=True)], -1
        ).sum(-1)

    def entropy(self) -> Tensor:
        return torch.stack([p.entropy() for p in self.parts], -1).sum(-1)

    def mode(self) -> Tensor:
        return torch.stack([p.mode() for p in self.parts], dim=-1)

    def kl(self, other: ActionDistribution) -> Tensor:
        if not isinstance(other, MultiCategoricalDist):
            return super().kl(other)
        return torch.stack([p.kl(q) for p, q in zip(self.parts, other.parts, strict=True)], -1).sum(
            -1
        )


@DISTRIBUTIONS.register("categorical")
class Categorical(Distribution):
    """Categorical over a ``Discrete(n, start)`` space; actions are stored zero-based."""

    def __init__(self, action_space: spaces.Space) -> None:
        check_space(action_space, (spaces.Discrete,), "action space", "Categorical")
        super().__init__(action_space)
        self.n = int(action_space.n)  # type: ignore[attr-defined]
        self.start = int(action_space.start)  # type: ignore[attr-defined]

    @property
    def num_params(self) -> int:
        return self.n

    @property
    def action_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def action_dtype(self) -> torch.dtype:
        return torch.int64

    def forward(self, params: Tensor) -> CategoricalDist:
        return CategoricalDist(params)

    @property
    def supports_action_mask(self) -> bool:
        return True

    def masked(self, params: Tensor, mask: Tensor | None) -> ActionDistribution:
        return self(params if mask is None else mask_logits(params, mask))

    def postprocess(self, actions: Tensor) -> Tensor:
        return actions + self.start if self.start else actions


@DISTRIBUTIONS.register("multi_categorical")
class MultiCategorical(Distribution):
    """Independent categoricals for a ``MultiDiscrete`` space (flattened to one axis)."""

    def __init__(self, action_space: spaces.Space) -> None:
        check_space(action_space, (spaces.MultiDiscrete,), "action space", "MultiCategorical")
        super().__init__(action_space)
        assert isinstance(action_space, spaces.MultiDiscrete)
        self.space_shape = tuple(action_space.shape)
        self.nvec = [int(n) for n in action_space.nvec.reshape(-1)]
        self.register_buffer(
            "start", torch.as_tensor(action_space.start.reshape(-1), dtype=torch.int64)
        )
        self.start: Tensor
        self._uniform = len(set(self.nvec)) == 1

    @property
    def num_params(self) -> int:
        return sum(self.nvec)

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)

    @property
    def action_dtype(self) -> torch.dtype:
        return torch.int64

    def forward(self, params: Tensor) -> ActionDistribution:
        if self._uniform:  # one batched categorical over [B, D, K]
            return CategoricalDist(params.reshape(params.shape[0], len(self.nvec), self.nvec[0]))
        return MultiCategoricalDist(params, self.nvec)

    @property
    def supports_action_mask(self) -> bool:
        return True

    def masked(self, params: Tensor, mask: Tensor | None) -> ActionDistribution:
        """Masks lay the dimensions' choices side by side (``sum(nvec)`` entries)."""
        return self(params if mask is None else mask_logits(params, mask))

    def postprocess(self, actions: Tensor) -> Tensor:
        actions = actions + self.start
        return actions.reshape(actions.shape[0], *self.space_shape)


@DISTRIBUTIONS.register("bernoulli")
class Bernoulli(Distribution):
    """Independent Bernoullis for a ``MultiBinary`` space."""

    def __init__(self, action_space: spaces.Space) -> None:
        check_space(action_space, (spaces.MultiBinary,), "action space", "Bernoulli")
        super().__init__(action_space)
        self.space_shape = tuple(action_space.shape)  # type: ignore[arg-type]
        self.dim = int(torch.Size(self.space_shape).numel())

    @property
    def num_params(self) -> int:
        return self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def forward(self, params: Tensor) -> BernoulliDist:
        return BernoulliDist(params)

    def postprocess(self, actions: Tensor) -> Tensor:
        return actions.to(torch.int8).reshape(actions.shape[0], *self.space_shape)


class BernoulliDist(ActionDistribution):
    """Independent Bernoullis parameterised by logits ``[B, D]``."""

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device)
        return (u < torch.sigmoid(self.logits)).to(self.logits.dtype)

    def log_prob(self, actions: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(
            self.logits, actions.to(self.logits.dtype), reduction="none"
        ).sum(-1)

    def entropy(self) -> Tensor:
        p = torch.sigmoid(self.logits)
        return F.binary_cross_entropy_with_logits(self.logits, p, reduction="none").sum(-1)

    def mode(self) -> Tensor:
        return (self.logits > 0).to(self.logits.dtype)

    def kl(self, other: ActionDistribution) -> Tensor:
        if not isinstance(other, BernoulliDist):
            return super().kl(other)
        p = torch.sigmoid(self.logits)
        logp, log1mp = F.logsigmoid(self.logits), F.logsigmoid(-self.logits)
        logq, log1mq = F.logsigmoid(other.logits), F.logsigmoid(-other.logits)
        return (p * (logp - logq) + (1 - p) * (log1mp - log1mq)).sum(-1)
