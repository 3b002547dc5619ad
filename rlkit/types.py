"""Shared type aliases."""

from __future__ import annotations

from typing import TypeAlias

from torch import Tensor

#: a batch of observations: one tensor, or one tensor per key of a Dict space.
Obs: TypeAlias = Tensor | dict[str, Tensor]
#: recurrent policy state (None for feed-forward policies).
PolicyState: TypeAlias = Tensor | tuple[Tensor, ...] | None
