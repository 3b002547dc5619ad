"""Replay of ready-made transitions, each with its own discount (n-step transitions that
actors computed, as Ape-X's learner stores them).

:class:`ReplayStorage` builds n-step targets from consecutive env steps it stored itself.
Distributed actors send whole unrolls instead, from envs that come and go (restarted or dropped
actors, asynchronous arrival), so the learner stores the transitions they make
(:func:`rlkit.distributed.nstep_transitions`): ``add`` takes a batch of ``width`` transitions
with their discounts and returns the slots they went to, so a prioritized sampler can be given
the actors' initial priorities straight away (:meth:`add_with_priorities`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rlkit.storages.base import STORAGES
from rlkit.storages.replay import ReplayBatch, ReplayStorage, _to_numpy
from rlkit.storages.samplers import Sampler
from rlkit.storages.stores import Store


@STORAGES.register("transition_replay")
class TransitionReplay(ReplayStorage):
    """Ring of ``capacity // width`` adds of ``width`` transitions each (one actor unroll per
    add); a sampled batch's ``discounts`` are the stored ones. ``n_step`` is the actors' (the
    windows come made), so the storage itself never joins steps."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        capacity: int,
        width: int = 1,
        store: str | Mapping[str, Any] | Store | None = None,
        sampler: str | Mapping[str, Any] | Sampler | None = None,
        gamma: float = 0.99,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            capacity,
            num_envs=width,
            store=store,
            sampler=sampler,
            gamma=gamma,
            device=device,
        )
        self.width = self.num_envs
        self.discounts = np.zeros(self.capacity, dtype=np.float32)

    def add(  # type: ignore[override]
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        discounts: Any,
    ) -> np.ndarray:
        """Store ``width`` transitions (leading dim ``width``) with their ``discounts``;
        returns the slot index of each."""
        disc = self._flags(discounts, "discounts", np.float32)
        super().add(obs, actions, rewards, next_obs, terminated, truncated)
        lo = ((self.steps - 1) % self.num_rows) * self.width
        self.discounts[lo : lo + self.width] = disc
        return np.arange(lo, lo + self.width)

    def add_with_priorities(self, priorities: Any, *transition: Any) -> np.ndarray:
        """:meth:`add`, then give the new slots ``priorities`` (``|TD error|`` each; ignored
        by samplers without priorities)."""
        slots = self.add(*transition)
        self.update_priorities(slots, np.abs(_to_numpy(priorities)).reshape(-1))
        return slots

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> ReplayBatch:
        batch = super().sample(batch_size, generator)
        batch.discounts = self._tensor(self.discounts[_to_numpy(batch.indices)])
        return batch

    @property
    def nbytes(self) -> int:
        return super().nbytes + int(self.discounts.nbytes)

    def _own_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._own_arrays(), "discounts": self.discounts}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, width={self.width}, "
            f"store={type(self.store).__name__}, sampler={type(self.sampler).__name__}, "
            f"len={len(self)}, nbytes={self.nbytes})"
        )


__all__ = ["TransitionReplay"]
