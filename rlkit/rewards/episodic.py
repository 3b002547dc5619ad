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

The memories are part of the module's ``state_dict`` (so of a checkpoint's
``model.safetensors``), under ``episodic.*``: ``episodic.num_envs`` and ``episodic.pending``
(resets announced and not yet matched) kept by this base class, and the tensors a subclass
returns from :meth:`~EpisodicIntrinsicReward.memory_state` (variable-length memories as fixed
tensors plus lengths). Their shapes follow the run (number of envs, memory length), and a
checkpoint written before they were saved lacks them: the module then starts with empty
memories (see :meth:`~EpisodicIntrinsicReward.variable_state_keys`).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from rlkit.rewards.base import IntrinsicReward, TransitionBatch

log = logging.getLogger("rlkit")

#: prefix of the memory entries in the module's ``state_dict``.
MEMORY_PREFIX = "episodic."


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

    def memory_state(self) -> dict[str, Tensor]:
        """The per-env memories as tensors (the same names whatever the state, empty before
        the first batch; variable-length memories as fixed tensors plus lengths), saved under
        ``episodic.<name>`` in the ``state_dict``. The default saves nothing: a loaded module
        then starts with empty memories, so override it (and :meth:`load_memory_state`) for an
        exact resume."""
        return {}

    def load_memory_state(self, state: Mapping[str, Tensor]) -> None:
        """Put back what :meth:`memory_state` returned; called after :meth:`init_memory` with
        the saved number of envs, tensors on the module's device."""

    # ----------------------------------------------------------------- checkpoints
    def _base_memory_state(self) -> dict[str, Tensor]:
        pending = self._pending if self._pending is not None else torch.zeros(0, dtype=torch.int64)
        return {
            "num_envs": torch.tensor(self._num_envs, dtype=torch.int64),
            "pending": pending.clone(),
        }

    def variable_state_keys(self) -> set[str]:
        """Keys of :meth:`state_dict` whose shapes follow the run and that checkpoints written
        before episodic memories were saved lack (``rlkit.checkpoint.load_module_state`` lets
        them differ or be missing)."""
        return {MEMORY_PREFIX + name for name in self._memory_names()}

    def _memory_names(self) -> set[str]:
        return {*self._base_memory_state(), *self.memory_state()}

    def _memory_device(self) -> torch.device:
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        memory = {**self._base_memory_state(), **self.memory_state()}
        for name, value in memory.items():
            destination[prefix + MEMORY_PREFIX + name] = value if keep_vars else value.detach()

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        head = prefix + MEMORY_PREFIX
        saved = {k[len(head) :]: v for k, v in state_dict.items() if k.startswith(head)}
        unexpected_keys[:] = [k for k in unexpected_keys if not k.startswith(head)]
        if not saved:  # written before memories were saved: start empty
            self._forget_all()
            return
        expected = self._memory_names()
        if set(saved) != expected:
            error_msgs.append(
                f"{type(self).__name__}: episodic memory entries {sorted(saved)} do not match "
                f"the expected {sorted(expected)}"
            )
            return
        num_envs = int(saved["num_envs"])
        if num_envs == 0:
            self._forget_all()
            return
        device = self._memory_device()
        self._num_envs = num_envs
        self._pending = saved["pending"].to("cpu", torch.int64).clone()
        self.init_memory(num_envs, device)
        own = {k: v.to(device) for k, v in saved.items() if k not in ("num_envs", "pending")}
        self.load_memory_state(own)

    def _forget_all(self) -> None:
        """Back to the state before the first batch (no envs, empty memories)."""
        self._num_envs = 0
        self._pending = None
        self.init_memory(0, self._memory_device())

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
