"""Helpers for tensors and dicts of tensors (observations), and numpy <-> torch conversion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.types import Obs


def obs_map(fn: Callable[[Tensor], Tensor], obs: Obs) -> Obs:
    """Apply ``fn`` to a tensor or to every tensor of a dict observation."""
    if isinstance(obs, Mapping):
        return {k: fn(v) for k, v in obs.items()}
    return fn(obs)


def torch_dtype_for(space: spaces.Space[Any]) -> torch.dtype:
    """Storage dtype for observations of ``space``: uint8 stays uint8, the rest float32."""
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return torch.uint8
    return torch.float32


def obs_to_tensor(obs: Any, space: spaces.Space[Any], device: torch.device) -> Obs:
    """One conversion per env step: numpy (or dict of numpy) -> tensors on ``device``."""
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            raise TypeError(f"expected a dict observation for {space!r}, got {type(obs).__name__}")
        return {k: _to_tensor(obs[k], space.spaces[k], device) for k in space.spaces}
    return _to_tensor(obs, space, device)


def _to_tensor(x: Any, space: spaces.Space[Any], device: torch.device) -> Tensor:
    return torch.as_tensor(np.asarray(x), device=device).to(torch_dtype_for(space))


def obs_batch_size(obs: Obs) -> int:
    """Leading dimension of an observation batch."""
    if isinstance(obs, Mapping):
        return int(next(iter(obs.values())).shape[0])
    return int(obs.shape[0])


def stack_obs(items: list[Any], space: spaces.Space[Any]) -> Any:
    """Stack per-env numpy observations (e.g. final observations) into one batch."""
    if isinstance(space, spaces.Dict):
        return {k: np.stack([o[k] for o in items]) for k in space.spaces}
    return np.stack(items)
