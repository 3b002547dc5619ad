"""One registry of what an agent trains and keeps: modules, optimizers, target networks and
extra state. Checkpoints are derived from it (``prototypes/checkpointing.py``); every
prototype registers through it, so a subclass's addition is saved and restored wherever it
lives."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rlkit.utils.compiling import eager_only
from rlkit.utils.optim import (
    FlatAdam,
    clip_grad_norm_,
    flat_location,
    flatten_parameters,
    optimizer_step,
)

#: what extra state may hold: JSON numbers (config.json) or tensors (safetensors).
StateValue = bool | int | float | Tensor


@dataclass
class StateRegistry:
    """Name -> module / optimizer / target network / extra value of one agent."""

    modules: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    targets: dict[str, TargetNetwork] = field(default_factory=dict)
    #: name -> (read, write) of an extra value (a number or a tensor).
    values: dict[str, tuple[Callable[[], StateValue], Callable[[Any], Any]]] = field(
        default_factory=dict
    )

    def _check_new(self, name: str, table: dict[str, Any], what: str) -> None:
        if not name or not isinstance(name, str) or "." in name:
            raise ValueError(f"{what} name must be a non-empty string without '.', got {name!r}")
        if name in table:
            raise ValueError(f"a {what} named {name!r} is already registered")


class FlatOptimizer:
    """An optimizer over the trainable parameters of some modules laid out in one flat buffer
    (:func:`~rlkit.utils.optim.flatten_parameters`), with its gradient clip.

    :meth:`step` is zero-grad, backward, optional norm clip and the optimizer step, each one
    tensor operation however many parameters there are. ``optimizer`` defaults to
    :class:`~rlkit.utils.optim.FlatAdam` (fused unless ``fused=False``).
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        lr: float,
        max_grad_norm: float | None = None,
        eps: float = 1e-8,
        fused: bool | None = None,
        optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
    ) -> None:
        self.flat = flatten_parameters(nn.ModuleList(modules))
        self.optimizer: torch.optim.Optimizer = (
            optimizer([self.flat])
            if optimizer is not None
            else FlatAdam([self.flat], lr=lr, eps=eps, fused=fused)
        )
        self.max_grad_norm = max_grad_norm

    @classmethod
    def over(
        cls,
        flat: nn.Parameter,
        optimizer: torch.optim.Optimizer,
        max_grad_norm: float | None = None,
    ) -> FlatOptimizer:
        """A group for an already flattened buffer and its optimizer (e.g. a second optimizer
        over the same parameters, as PPG's auxiliary phase)."""
        group = cls.__new__(cls)
        group.flat, group.optimizer, group.max_grad_norm = flat, optimizer, max_grad_norm
        return group

    @eager_only
    def zero_grad(self) -> None:
        """Zero the flat gradient buffer (keeping the per-parameter views)."""
        grad = self.flat.grad
        assert grad is not None
        grad.zero_()

    @eager_only
    def clip(self) -> Tensor | None:
        """Clip the gradient to ``max_grad_norm`` (if set); returns the norm before clipping."""
        if self.max_grad_norm is None:
            return None
        grad = self.flat.grad
        assert grad is not None
        return clip_grad_norm_(grad, self.max_grad_norm)

    @eager_only
    def step(self, loss: Any) -> None:
        """Backpropagate ``loss`` (a :class:`~rlkit.losses.Loss` or a tensor) into this buffer
        only (after zeroing it), clip and take one optimizer step."""
        self.zero_grad()
        loss.backward()
        self.clip()
        optimizer_step(self.optimizer)

    def step_with_grad(self, grad: Tensor) -> None:
        """One step with a gradient computed by hand (shaped like the buffer, or a scalar for
        a one-parameter buffer)."""
        flat_grad = self.flat.grad
        assert flat_grad is not None
        flat_grad.copy_(grad.detach().reshape(flat_grad.shape))
        self.clip()
        optimizer_step(self.optimizer)


class TargetNetwork(nn.Module):
    """A frozen copy of ``source`` that follows it by Polyak averaging.

    ``track`` (default: all of ``source``) names the sub-modules whose parameters move; the
    rest of the copy keeps its initial weights (SAC's target needs only the critics). The
    copy's parameters live in one buffer; tracked online parameters that sit side by side in
    one flat optimizer buffer (register the optimizers first) are moved as one slice, so an
    update is one ``lerp_`` (soft) or ``copy_`` (hard) per run of them.
    """

    def __init__(self, source: nn.Module, track: Sequence[nn.Module] | None = None) -> None:
        super().__init__()
        self.net = copy.deepcopy(source)
        online = list(source.parameters())
        target = list(self.net.parameters())
        self._runs: list[tuple[Tensor, Tensor]] = []
        if not target:
            return
        flat = torch.empty(
            sum(p.numel() for p in target), dtype=target[0].dtype, device=target[0].device
        )
        offsets: list[int] = []
        offset = 0
        with torch.no_grad():
            for p in target:
                n = p.numel()
                flat[offset : offset + n].copy_(p.reshape(-1))
                p.data = flat[offset : offset + n].view_as(p)
                p.grad = None
                p.requires_grad_(False)
                offsets.append(offset)
                offset += n
        tracked = {id(p) for m in track for p in m.parameters()} if track is not None else None
        pairs = [
            (o, t_offset, o.numel())
            for o, t_offset in zip(online, offsets, strict=True)
            if tracked is None or id(o) in tracked
        ]
        self._runs = _runs(pairs, flat)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)

    @torch.no_grad()
    def update(self, tau: float) -> None:
        """``target <- (1 - tau) * target + tau * online`` (``tau == 1``: copy)."""
        for online, target in self._runs:
            if tau >= 1.0:
                target.copy_(online)
            else:
                target.lerp_(online, tau)


def _runs(
    pairs: Sequence[tuple[Tensor, int, int]], target_flat: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """Group ``(online parameter, target offset, size)`` into runs that are consecutive both in
    one online flat buffer and in the target buffer; each run becomes a pair of 1-D views."""
    runs: list[tuple[Tensor, Tensor]] = []
    current: list[Any] | None = None  # [online flat, online start, target start, size]
    for online, t_offset, n in pairs:
        where = flat_location(online)
        if (
            current is not None
            and where is not None
            and where[0] is current[0]
            and where[1] == current[1] + current[3]
            and t_offset == current[2] + current[3]
        ):
            current[3] += n
            continue
        if current is not None:
            runs.append(_run_views(current, target_flat))
        if where is None:  # not in a flat buffer: a run of its own
            runs.append((online.detach().reshape(-1), target_flat[t_offset : t_offset + n]))
            current = None
        else:
            current = [where[0], where[1], t_offset, n]
    if current is not None:
        runs.append(_run_views(current, target_flat))
    return runs


def _run_views(run: list[Any], target_flat: Tensor) -> tuple[Tensor, Tensor]:
    flat, start, t_start, n = run
    return flat.detach()[start : start + n], target_flat[t_start : t_start + n]


__all__ = ["FlatOptimizer", "StateRegistry", "StateValue", "TargetNetwork"]
