"""Shared type aliases."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, TypeAlias

import numpy as np
from torch import Tensor

#: a batch of observations: one tensor, or one tensor per key of a Dict space.
Obs: TypeAlias = Tensor | dict[str, Tensor]
#: recurrent policy state (None for feed-forward policies).
PolicyState: TypeAlias = Tensor | tuple[Tensor, ...] | None
#: actions ready for the env: one NumPy array for the batch (``env.step(actions)``).
EnvActions: TypeAlias = np.ndarray


class AgentLike(Protocol):
    """What core code (hub, export, recording) uses of an agent, so core can take one without
    importing the layers above it; :class:`rlkit.prototypes.Agent` satisfies it."""

    registry_id: ClassVar[str | None]
    config: Any
    env: Any
    policy: Any
    num_updates: int
    device: Any
    observation_space: Any
    action_space: Any
    global_step: int

    def save(self, path: Any, overwrite: bool = False) -> Any: ...

    def evaluate(
        self, episodes: int = ..., env: Any = ..., deterministic: bool = ..., seed: Any = ...
    ) -> dict[str, float]: ...

    def act(self, obs: Any, deterministic: bool = False) -> Any: ...

    def acting_path(self) -> Any: ...

    def preprocess(self, obs: Any) -> Any: ...

    def obs_to_tensor(self, obs: Any) -> Any: ...

    def to_env_actions(self, actions: Any) -> Any: ...

    def primitives(self) -> dict[str, Any]: ...
