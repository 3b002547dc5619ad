"""Common ``act()`` of exported policies (ONNX, torch.export, TensorRT, Ascend OM)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from gymnasium import spaces

from rlkit.export.metadata import ExportMetadata
from rlkit.utils.tensors import torch_dtype_for


class ExportedPolicy(ABC):
    """Runs an exported acting path with the same ``act()`` as an agent.

    ``act(obs)`` takes a batch (or one unbatched observation) shaped like the observation space,
    a dict for Dict spaces, and returns env-ready actions in the action space's dtype. Exported
    graphs are deterministic (the distribution's mode).
    """

    def __init__(self, metadata: ExportMetadata) -> None:
        self.metadata = metadata
        self.observation_space = metadata.observation_space
        self.action_space = metadata.action_space

    @abstractmethod
    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Execute the graph on positional inputs (in :attr:`input_names` order)."""

    @property
    def input_names(self) -> list[str]:
        return self.metadata.input_names

    def inputs_from_obs(self, obs: Any) -> tuple[list[np.ndarray], bool]:
        """Positional graph inputs in their storage dtypes, and whether ``obs`` was unbatched."""
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            if not isinstance(obs, dict):
                raise TypeError(f"expected a dict observation for {space!r}, got {type(obs)}")
            parts = [(obs[k], space.spaces[k]) for k in self.input_names]
        else:
            parts = [(obs, space)]
        first, first_space = parts[0]
        single = np.ndim(first) == len(first_space.shape or ())
        arrays = []
        for value, sub in parts:
            dtype = np.uint8 if str(torch_dtype_for(sub)) == "torch.uint8" else np.float32
            array = np.asarray(value, dtype=dtype)
            arrays.append(array[None] if single else array)
        return arrays, single

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Env-ready actions for a batch of observations (or for a single one)."""
        if not deterministic:
            raise ValueError("exported policies act deterministically (the distribution's mode)")
        inputs, single = self.inputs_from_obs(obs)
        actions = np.asarray(self.run(inputs))
        dtype = self.action_space.dtype
        if dtype is not None:
            actions = actions.astype(dtype, copy=False)
        return actions[0] if single else actions
