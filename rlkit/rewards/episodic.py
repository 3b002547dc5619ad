"""Episodic bonuses: per-env memory of the current episode, streamed over rollouts.

A ``[T, N]`` batch is a rollout: env ``n``'s transitions in time order. The bonus of step ``t``
is computed against the memory of the episode so far, the step is then added to the memory,
and the memory is cleared after steps where ``dones[t, n]`` is set; the memory carries over to
the next batch, so an episode split across rollouts keeps its memory.

:meth:`reset_episodes` announces episode ends. The on-policy loop announces them while it
collects, before the rollout's bonus is computed, so a reset is matched against the ends inside
the next ``[T, N]`` batch (where the stream clears the memory at the right step); resets with
no matching end in that batch (an env reset by hand, an evaluation) clear the memory before it.
For a one-step stream (acting-time bonuses in an off-policy loop) pass ``[1, N]`` batches, with
``reset_episodes`` before or after each step.

A ``[B]`` batch is a replay sample without time order: each row is scored against the other
rows of the batch (the batch plays the episodic memory) and the per-env memories are left as
they are.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor

from rlkit.rewards.base import IntrinsicReward, TransitionBatch

log = logging.getLogger("rlkit")


class EpisodicIntrinsicReward(IntrinsicReward):
    """Base of bonuses with per-env episodic memory (see the module doc)."""

    _num_envs: int = 0
    _pending: Tensor | None = None

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def init_memory(self, num_envs: int, device: torch.device) -> None:
        """Allocate empty memories for ``num_envs`` envs."""

    @abstractmethod
    def clear_memory(self, env_mask: Tensor) -> None:
        """Empty the memories of the envs where ``env_mask`` (bool ``[N]``) is true."""

    @abstractmethod
    def prepare_stream(self, batch: TransitionBatch) -> Any:
        """Per-batch work done once for all steps (e.g. embeddings ``[T, N, D]``)."""

    @abstractmethod
    def stream_step(self, prepared: Any, t: int) -> Tensor:
        """Bonus ``[N]`` of step ``t`` against the memories, then add step ``t`` to them."""

    @abstractmethod
    def compute_independent(self, batch: TransitionBatch) -> Tensor:
        """Bonus ``[B]`` of independent transitions (the batch is its own memory)."""

    @abstractmethod
    def memory_sizes(self) -> Tensor:
        """Entries in each env's episodic memory (``[N]``; empty before the first batch)."""

    # ----------------------------------------------------------------- the stream
    def _ensure_envs(self, num_envs: int, device: torch.device) -> None:
        if self._num_envs == num_envs and self._pending is not None:
            return
        if self._num_envs:
            log.warning(
                "%s: batch has %d envs but the episodic memory held %d; starting fresh memories",
                type(self).__name__,
                num_envs,
                self._num_envs,
            )
        self._num_envs = num_envs
        self._pending = torch.zeros(num_envs, dtype=torch.int64)
        self.init_memory(num_envs, device)

    def reset_episodes(self, env_mask: Tensor) -> None:
        """Announce that the episodes of the envs where ``env_mask`` is true ended."""
        mask = env_mask.reshape(-1).bool().cpu()
        self._ensure_envs(mask.numel(), env_mask.device)
        assert self._pending is not None
        self._pending += mask.long()

    def reset_memory(self) -> None:
        """Forget every env's episodic memory now."""
        if self._num_envs:
            self.clear_memory(torch.ones(self._num_envs, dtype=torch.bool))
            assert self._pending is not None
            self._pending.zero_()

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        dones = batch.dones
        if dones.dim() == 1:
            return self.compute_independent(batch)
        if dones.dim() != 2:
            raise ValueError(
                f"{type(self).__name__}: batch.dones must be shaped [T, N] or [B], got "
                f"{tuple(dones.shape)}"
            )
        num_steps, num_envs = dones.shape
        self._ensure_envs(num_envs, dones.device)
        assert self._pending is not None
        ends = dones.bool()
        early = self._pending > ends.sum(0).cpu()  # resets with no end inside this batch
        if early.any():
            self.clear_memory(early)
        self._pending.zero_()
        prepared = self.prepare_stream(batch)
        out = torch.empty(num_steps, num_envs, device=dones.device)
        for t in range(num_steps):
            out[t] = self.stream_step(prepared, t)
            if ends[t].any():
                self.clear_memory(ends[t].cpu())
        return out
