"""Storage contract: where transitions go and batches come from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor

from rlkit.configurable import Configurable
from rlkit.registry import Registry


class Storage(Configurable, ABC):
    """Base of rollout and replay storages.

    Concrete classes declare the exact fields of ``add``; ``sample`` returns a batch dataclass.
    ``state_dict`` holds plain tensors so storages can be checkpointed without pickle.
    """

    kind = "storage"

    @abstractmethod
    def add(self, *args: Any, **kwargs: Any) -> None:
        """Append one vectorised step (one entry per env)."""

    @abstractmethod
    def sample(self, *args: Any, **kwargs: Any) -> Any:
        """Return a batch of stored transitions."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of stored transitions."""

    @abstractmethod
    def reset(self) -> None:
        """Forget stored transitions (memory stays allocated)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Tensor]:
        """Contents as named tensors."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore contents written by :meth:`state_dict`."""


STORAGES: Registry[Storage] = Registry("storage", Storage)
