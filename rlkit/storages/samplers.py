"""Samplers: which stored transitions a replay batch is made of.

A :class:`Sampler` sees the replay storage as ``capacity`` flat slots (``row * num_envs + env``)
of which the first ``size`` hold data. It returns slot indices and importance weights; the
storage turns them into a batch. Samplers own any per-slot state (priorities) and are told when
slots are (re)written, so they compose with every store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlkit.configurable import Configurable
from rlkit.registry import Registry
from rlkit.storages.hdf5 import as_array
from rlkit.storages.sumtree import SumTree


class Sampler(Configurable, ABC):
    """Chooses slot indices for a batch. Built without arguments about the data; the storage
    calls :meth:`setup` with its capacity (so ``"uniform"`` in a YAML config is enough)."""

    kind = "replay_sampler"
    capacity: int = 0

    def setup(self, capacity: int) -> None:
        """Bind to a storage of ``capacity`` flat slots (called once by the storage)."""
        self.capacity = int(capacity)

    def on_add(self, indices: np.ndarray) -> None:
        """Slots ``indices`` were just (over)written with new transitions."""

    @abstractmethod
    def sample(
        self, batch_size: int, size: int, generator: torch.Generator | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``batch_size`` slot indices among the first ``size`` slots, and their
        importance-sampling weights (``None`` means all ones)."""

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New priorities (``|TD error|``) of sampled slots; ignored by non-prioritized samplers."""

    @property
    def nbytes(self) -> int:
        """Bytes of per-slot state."""
        return 0

    def reset(self) -> None:
        """Forget per-slot state."""

    def state_dict(self) -> dict[str, Tensor]:
        """Per-slot and schedule state as named tensors."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` wrote."""


REPLAY_SAMPLERS: Registry[Sampler] = Registry("replay_sampler", Sampler)


@REPLAY_SAMPLERS.register("uniform")
class UniformSampler(Sampler):
    """Every stored transition equally likely, with replacement."""

    def __init__(self) -> None:
        self.capacity = 0

    def sample(
        self, batch_size: int, size: int, generator: torch.Generator | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return torch.randint(0, size, (batch_size,), generator=generator).numpy(), None


@REPLAY_SAMPLERS.register("prioritized")
class PrioritizedSampler(Sampler):
    """Proportional prioritized replay (Schaul et al. 2016) on a vectorised sum-tree.

    Slot ``i`` is drawn with probability ``P(i) = p_i / sum_j p_j`` where
    ``p_i = (|delta_i| + eps) ** alpha``; transitions enter with the largest priority seen so
    far, so each is likely to be replayed at least once. Importance weights
    ``w_i = (size * P(i)) ** -beta`` are divided by the largest weight over the stored
    transitions, ``(size * P_min) ** -beta``, so they only ever scale updates down. ``beta``
    moves linearly from ``beta`` to ``beta_final`` over ``beta_steps`` added transitions
    (``None``: stays at ``beta``).
    """

    def __init__(
        self,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_final: float = 1.0,
        beta_steps: int | None = None,
        eps: float = 1e-6,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"PrioritizedSampler: alpha must be >= 0, got {alpha}")
        if not 0 <= beta <= 1 or not 0 <= beta_final <= 1:
            raise ValueError(
                f"PrioritizedSampler: beta and beta_final must be in [0, 1], got {beta}, "
                f"{beta_final}"
            )
        if beta_steps is not None and beta_steps < 1:
            raise ValueError(
                f"PrioritizedSampler: beta_steps must be >= 1 or None, got {beta_steps}"
            )
        if eps <= 0:
            raise ValueError(f"PrioritizedSampler: eps must be > 0, got {eps}")
        self.alpha = float(alpha)
        self.beta_start = float(beta)
        self.beta_final = float(beta_final)
        self.beta_steps = None if beta_steps is None else int(beta_steps)
        self.eps = float(eps)
        self.capacity = 0
        self.tree: SumTree | None = None
        #: largest raw priority (``|delta| + eps``) seen; new transitions get it.
        self.max_priority = 1.0
        #: transitions added so far (drives the beta schedule).
        self.added = 0

    def setup(self, capacity: int) -> None:
        super().setup(capacity)
        self.tree = SumTree(self.capacity)

    def _tree(self) -> SumTree:
        if self.tree is None:
            raise RuntimeError("PrioritizedSampler is not set up; pass it to a ReplayStorage")
        return self.tree

    @property
    def beta(self) -> float:
        """The current importance-sampling exponent."""
        if self.beta_steps is None:
            return self.beta_start
        frac = min(1.0, self.added / self.beta_steps)
        return self.beta_start + frac * (self.beta_final - self.beta_start)

    def on_add(self, indices: np.ndarray) -> None:
        self._tree().set(indices, np.full(len(indices), self.max_priority**self.alpha))
        self.added += len(indices)

    def set_sampleable(self, indices: np.ndarray, sampleable: bool) -> None:
        """Give slots the largest priority seen (``sampleable``) or priority 0 (never drawn),
        without counting them as added: for storages whose samples start at a slot and whose
        newest slots cannot start one yet (:class:`~rlkit.storages.SequenceReplay`)."""
        value = self.max_priority**self.alpha if sampleable else 0.0
        self._tree().set(np.asarray(indices, dtype=np.int64), np.full(len(indices), value))

    def sample(
        self, batch_size: int, size: int, generator: torch.Generator | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        tree = self._tree()
        total = tree.total
        if not total > 0.0:
            raise RuntimeError(
                "PrioritizedSampler: no stored transition has a priority (were transitions "
                "added through this sampler's storage?)"
            )
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64).numpy()
        indices = tree.find(u * total)
        # rounding can reach past the stored slots only when total is denormal-small
        np.minimum(indices, size - 1, out=indices)
        probs = tree.get(indices) / total
        beta = self.beta
        # w_i / max_j w_j = (P(i) / P_min) ** -beta
        weights = (probs / (tree.min / total)) ** -beta
        return indices, weights.astype(np.float32)

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        indices = np.asarray(indices, dtype=np.int64)
        raw = np.abs(np.asarray(priorities, dtype=np.float64)).reshape(-1) + self.eps
        if raw.shape != indices.shape:
            raise ValueError(
                f"update_priorities: priorities has {raw.size} entries, expected one per index "
                f"({indices.size})"
            )
        if not np.all(np.isfinite(raw)):
            raise ValueError("update_priorities: priorities must be finite (got NaN or inf)")
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise ValueError(
                f"update_priorities: indices must be in [0, {self.capacity}), got "
                f"[{indices.min()}, {indices.max()}]"
            )
        self._tree().set(indices, raw**self.alpha)
        if raw.size:
            self.max_priority = max(self.max_priority, float(raw.max()))

    @property
    def nbytes(self) -> int:
        return 0 if self.tree is None else self.tree.nbytes

    def reset(self) -> None:
        self._tree().clear()
        self.max_priority = 1.0
        self.added = 0

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "priorities": torch.from_numpy(self._tree().state()),
            "max_priority": torch.tensor(self.max_priority, dtype=torch.float64),
            "added": torch.tensor(self.added, dtype=torch.int64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = sorted({"priorities", "max_priority", "added"} - set(state))
        if missing:
            raise ValueError(f"PrioritizedSampler.load_state_dict: missing entries {missing}")
        self._tree().load(as_array(state["priorities"]))
        self.max_priority = float(as_array(state["max_priority"]))
        self.added = int(as_array(state["added"]))
