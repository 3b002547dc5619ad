"""A weighted sum of reward models whose parts are logged separately."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rlkit.config.rules import Rule, Satisfies
from rlkit.configurable import build_primitive
from rlkit.reward_models.base import REWARD_MODELS, RewardModel, TextBatch

_RESERVED = frozenset(dir(nn.ModuleDict()))


def _check_part_name(key: Any) -> None:
    if not isinstance(key, str) or not key or "." in key or "/" in key:
        raise ValueError(
            f"CompositeReward: part name {key!r} must be a non-empty string without '.' or '/'"
        )
    if key in _RESERVED:
        raise ValueError(
            f"CompositeReward: part name {key!r} is reserved (an nn.ModuleDict attribute); "
            "choose another"
        )


def _weights(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    for key, w in value.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
            raise ValueError(f"the weight of {key!r} is {w!r}, not a finite number")
    return True


PARTS = Satisfies(
    lambda value: isinstance(value, Mapping) and bool(value),
    "a non-empty dict {name: reward model object, registered id or {'id': ...} spec}",
)
WEIGHTS = Satisfies(_weights, "a dict {part name: finite number}", none=True)


def last_token_index(mask: Tensor, owner: str) -> Tensor:
    """The position of each row's last True entry of ``mask`` ``[B, T]`` (an error naming
    ``owner`` when a row has none)."""
    mask = mask.to(torch.bool)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).max(dim=1).values
    empty = (last < 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"{owner}: completion(s) {empty} have no completion tokens (completion_mask row "
            "all False), so there is no last token to put their per-completion reward on"
        )
    return last


@REWARD_MODELS.register("composite")
class CompositeReward(RewardModel):
    """The weighted sum of named reward models, each logged as its own part.

    ``parts`` maps names to reward models (objects, registered ids or ``{"id": ...}``
    specs); each part takes its key as its name. ``weights`` (default 1 each) scale the
    parts. :meth:`score_parts` gives ``{name: weight * part}`` (a nested composite's parts as
    ``"outer/inner"``); :meth:`forward` adds them: ``[B]`` when every part is ``[B]``, else
    ``[B, T]`` with each per-completion part placed on the completion's last token (read from
    ``completion_mask``), as RLHF adds a sequence reward to per-token KL penalties.
    :meth:`update` updates every part, its log keys prefixed ``"<name>/"``.
    """

    default_name = "reward"
    argument_rules: ClassVar[dict[str, Rule]] = {"parts": PARTS, "weights": WEIGHTS}

    def __init__(
        self,
        parts: dict[str, RewardModel | str | dict[str, Any]],
        weights: dict[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(parts))
        if unknown:
            raise ValueError(
                f"CompositeReward: weights name part(s) {', '.join(map(repr, unknown))} that "
                f"parts does not have; its parts: {', '.join(map(repr, parts))}"
            )
        built: dict[str, RewardModel] = {}
        for key, value in parts.items():
            _check_part_name(key)
            part = build_primitive(
                "reward_model", value, RewardModel, f"CompositeReward part {key!r}"
            )
            assert part is not None
            part.name = key
            built[key] = part
        self.parts = nn.ModuleDict(built)
        self.weights = {key: float(weights.get(key, 1.0)) for key in built}

    def _items(self) -> list[tuple[str, RewardModel]]:
        return [(key, part) for key, part in self.parts.items() if isinstance(part, RewardModel)]

    def required_fields(self) -> tuple[str, ...]:
        fields = [f for _, part in self._items() for f in part.required_fields()]
        return tuple(dict.fromkeys(fields))

    def score(self, batch: TextBatch) -> Tensor:
        for key, part in self._items():  # name the part that needs a missing field
            missing = [f for f in part.required_fields() if getattr(batch, f, None) is None]
            if missing:
                raise ValueError(
                    f"reward model CompositeReward ({self.name!r}): part {key!r} "
                    f"({type(part).__name__}) needs the batch field(s) {', '.join(missing)}, "
                    "which this caller did not provide"
                )
        return super().score(batch)

    def score_parts(self, batch: TextBatch) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for key, part in self._items():
            weight = self.weights[key]
            inner = part.score_parts(batch)
            if list(inner) == [part.name]:
                out[key] = weight * inner[part.name]
            else:
                out.update({f"{key}/{k}": weight * v for k, v in inner.items()})
        return out

    def forward(self, batch: TextBatch) -> Tensor:
        return self.combine(self.score_parts(batch), batch)

    def combine(self, parts: Mapping[str, Tensor], batch: TextBatch) -> Tensor:
        """The sum of ``parts`` (from :meth:`score_parts`) as :meth:`forward` forms it."""
        owner = f"CompositeReward ({self.name!r})"
        per_token = {k: v for k, v in parts.items() if v.ndim == 2}
        if not per_token:
            device = next(iter(parts.values())).device
            return torch.stack([v.to(device, torch.float32) for v in parts.values()]).sum(dim=0)
        shapes = {k: tuple(v.shape) for k, v in per_token.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"{owner}: per-token parts have different shapes {shapes}")
        first = next(iter(per_token.values()))
        total = torch.zeros(first.shape, dtype=torch.float32, device=first.device)
        for value in per_token.values():
            total = total + value.to(total.device, torch.float32)
        per_completion = [k for k, v in parts.items() if v.ndim == 1]
        if per_completion:
            if batch.completion_mask is None:
                raise ValueError(
                    f"{owner} adds the per-completion part(s) {', '.join(per_completion)} to the "
                    f"per-token part(s) {', '.join(per_token)} at each completion's last token, "
                    "which needs the batch field completion_mask"
                )
            mask = batch.completion_mask.to(total.device)
            if tuple(mask.shape) != tuple(total.shape):
                raise ValueError(
                    f"{owner}: completion_mask {tuple(mask.shape)} and the per-token parts "
                    f"{tuple(total.shape)} must have the same shape"
                )
            last = last_token_index(mask, owner)
            rows = torch.arange(total.shape[0], device=total.device)
            for key in per_completion:
                total[rows, last] += parts[key].to(total.device, torch.float32)
        return total

    def update(self, batch: TextBatch) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, part in self._items():
            out.update({f"{key}/{k}": v for k, v in part.update(batch).items()})
        return out

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights}"


__all__ = ["CompositeReward", "last_token_index"]
