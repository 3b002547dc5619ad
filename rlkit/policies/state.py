"""The recurrent-state contract: what a policy carries between steps, in one layout.

A policy's state is a tuple of tensors, each **batch-first** (``[B, *shape]``), so that
storages, evaluation, checkpoints and export can select, reset and stack the rows of any
policy's state (LSTM, GRU, Transformer cache or a user's own) without knowing what it is.
The policy declares each tensor's per-row shape and dtype with :class:`StateSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: a policy state in the contract's layout: a tuple of batch-first tensors.
StateTuple = tuple[Tensor, ...]


@dataclass(frozen=True)
class StateSpec:
    """One state tensor: its per-row ``shape`` (without the batch dimension), ``dtype`` and a
    ``name`` used for ONNX inputs/outputs and checkpoint keys."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    def zeros(self, batch_size: int, device: torch.device | str = "cpu") -> Tensor:
        """The initial (all-zero) value of this tensor for ``batch_size`` rows."""
        return torch.zeros(batch_size, *self.shape, dtype=self.dtype, device=device)


def as_tuple(state: Tensor | Sequence[Tensor] | None) -> StateTuple:
    """``state`` as a tuple of tensors (``None`` is the empty tuple)."""
    if state is None:
        return ()
    if isinstance(state, Tensor):
        return (state,)
    return tuple(state)


def state_rows(state: StateTuple, index: Tensor | slice) -> StateTuple:
    """The rows ``index`` of every state tensor."""
    return tuple(s[index] for s in state)


def reset_rows(state: StateTuple, episode_start: Tensor | None) -> StateTuple:
    """``state`` with the rows where ``episode_start`` is non-zero set to zero (the initial
    state): what every recurrent policy applies before a step."""
    if episode_start is None:
        return state
    eager_cpu = episode_start.device.type == "cpu" and not torch.compiler.is_compiling()
    if eager_cpu and not bool(episode_start.any()):
        return state  # nothing to reset (eager CPU only: no device sync, no traced branch)
    keep = 1.0 - episode_start.float()
    out = []
    for s in state:
        k = keep.reshape(-1, *([1] * (s.dim() - 1))).to(s.dtype)
        out.append(s * k)
    return tuple(out)


def check_state(state: StateTuple, specs: Sequence[StateSpec], batch: int, owner: str) -> None:
    """Raise a clear error when ``state`` does not follow ``specs`` for ``batch`` rows."""
    if len(state) != len(specs):
        names = [s.name for s in specs]
        raise ValueError(
            f"{owner}: state has {len(state)} tensors, expected {len(specs)} ({', '.join(names)})"
        )
    for tensor, spec in zip(state, specs, strict=True):
        expected = (batch, *spec.shape)
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{owner}: state tensor {spec.name!r} has shape {tuple(tensor.shape)}, expected "
                f"{expected} (batch-first)"
            )


__all__ = ["StateSpec", "StateTuple", "as_tuple", "check_state", "reset_rows", "state_rows"]
