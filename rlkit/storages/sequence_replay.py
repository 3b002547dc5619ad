"""Sequence replay for recurrent value-based agents (R2D2, Kapturowski et al. 2019).

Transitions sit in the same ring as :class:`~rlkit.storages.ReplayStorage` (``num_rows`` rows by
``num_envs`` columns, each env's history contiguous), and every slot also keeps the recurrent
state that entered its step and whether the step began an episode. A sample is ``batch_size``
windows of ``sequence_length`` consecutive steps of one env each, from any stored step that has
``sequence_length - 1`` steps after it (R2D2 cuts fixed overlapping chunks; every start is
the same data at a finer grain). A window may cross episode boundaries: the policy resets its
state where ``episode_starts`` is 1, exactly as when acting.

Bootstrapping through truncation: the observation after a truncated step inside a window is
the episode's final one, which the next step of the window does not hold (it starts the next
episode). For each such step the batch carries one more column, a copy of its window whose
next position holds the final observation, so one unroll of the network gives every value a
target needs (:meth:`SequenceBatch.next_values`).

Priorities (``sampler="prioritized"``) belong to start slots: a slot becomes sampleable with
the largest priority seen once ``sequence_length - 1`` steps follow it, and stops being
sampleable when it is overwritten. R2D2 gives a sequence the priority
``eta * max_t |delta_t| + (1 - eta) * mean_t |delta_t|``
(:func:`rlkit.losses.sequence_priorities`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.storages.base import STORAGES
from rlkit.storages.replay import ReplayStorage, _int_arg, _to_numpy
from rlkit.storages.rollout import state_layout
from rlkit.storages.samplers import PrioritizedSampler, Sampler, UniformSampler
from rlkit.storages.stores import NpObs, Store
from rlkit.types import Obs
from rlkit.utils.tensors import obs_map


@dataclass
class SequenceBatch:
    """``B`` sampled windows of ``T`` steps, time-major, plus ``K`` bootstrap columns.

    ``obs`` holds ``T + 1`` positions: the ``T`` steps and the (true) next observation of the
    last one. Columns ``0..B-1`` are the windows; column ``B + k`` repeats window
    ``final_columns[k]`` with the final observation of its step ``final_steps[k]`` (truncated
    there) at position ``final_steps[k] + 1``, so one unroll also values that observation.
    """

    #: observations ``[T + 1, B + K, ...]``.
    obs: Obs
    #: ``[T + 1, B + K]`` float: 1 where the state resets before that position.
    episode_starts: Tensor
    #: the recurrent state entering position 0, one ``[B + K, ...]`` tensor per state tensor.
    states: tuple[Tensor, ...]
    #: ``[T, B, ...]`` actions taken (raw, as stored).
    actions: Tensor
    #: ``[T, B]`` float32 rewards.
    rewards: Tensor
    #: ``[T, B]`` float: 1 where the step ended its episode by termination.
    terminated: Tensor
    #: ``[T, B]`` float: 1 where the step ended its episode by truncation (time limit).
    truncated: Tensor
    #: importance-sampling weights ``[B]`` (ones for uniform sampling).
    weights: Tensor
    #: start slot of each window ``[B]`` int64, for :meth:`SequenceReplay.update_priorities`.
    indices: Tensor
    #: ``[K]`` int64: the truncated step of each bootstrap column.
    final_steps: Tensor
    #: ``[K]`` int64: the window each bootstrap column copies.
    final_columns: Tensor

    @property
    def num_sequences(self) -> int:
        """``B``: the sampled windows (the loss's batch)."""
        return int(self.rewards.shape[1])

    @property
    def length(self) -> int:
        """``T``: steps per window."""
        return int(self.rewards.shape[0])

    def map_obs(self, fn: Callable[[Obs], Obs]) -> SequenceBatch:
        """This batch with ``fn`` applied to its observations as ``[(T + 1) * (B + K), ...]``
        rows (normalisation; an augmentation then draws per frame)."""
        lead = self.episode_starts.shape
        flat = fn(obs_map(lambda x: x.reshape(-1, *x.shape[2:]), self.obs))
        return dataclasses.replace(
            self, obs=obs_map(lambda x: x.reshape(*lead, *x.shape[1:]), flat)
        )

    def positions(self, start: int, stop: int | None = None) -> tuple[Obs, Tensor]:
        """Observations and episode starts of positions ``start:stop`` of every column as
        time-major rows ``[(stop - start) * (B + K), ...]`` (what a policy's sequence call
        takes with a ``B + K``-row state)."""
        rows = slice(start, stop)

        def flat(x: Tensor) -> Tensor:
            part = x[rows]
            return part.reshape(part.shape[0] * part.shape[1], *part.shape[2:])

        return obs_map(flat, self.obs), flat(self.episode_starts)

    def next_values(self, values: Tensor, start: int = 0) -> Tensor:
        """The value of each step's true next observation, ``[T - start, B]``, from
        ``values`` ``[T + 1 - start, B + K]`` of positions ``start..T``: position ``t + 1`` of
        the window, or the bootstrap column's where step ``t`` was truncated."""
        b = self.num_sequences
        out = values[1:, :b].clone()
        keep = self.final_steps >= start
        if bool(keep.any()):
            steps = self.final_steps[keep] - start
            extra = b + keep.nonzero().flatten()
            out[steps, self.final_columns[keep]] = values[steps + 1, extra]
        return out


@STORAGES.register("sequence_replay")
class SequenceReplay(ReplayStorage):
    """Replay of ``sequence_length``-step windows with the recurrent state at every step.

    ``state_shapes``/``state_dtypes`` lay out the policy's state (as
    :meth:`~rlkit.policies.Policy.state_spec` declares it); :meth:`add` takes the state that
    entered the step and the step's ``episode_start`` flags. ``sampler`` is ``"uniform"`` or
    ``"prioritized"`` (priorities per window start). ``n_step`` targets are the agent's: they
    are computed inside a window (:func:`rlkit.losses.sequence_nstep_targets`).
    """

    rows_independent = False

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        capacity: int,
        sequence_length: int,
        num_envs: int = 1,
        state_shapes: Sequence[Sequence[int]] | None = None,
        state_dtypes: Sequence[str] | None = None,
        store: str | Mapping[str, Any] | Store | None = None,
        sampler: str | Mapping[str, Any] | Sampler | None = None,
        gamma: float = 0.99,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            observation_space, action_space, capacity, num_envs, store, sampler, 1, gamma,
            device=device,
        )  # fmt: skip
        self.sequence_length = _int_arg(sequence_length, "sequence_length", 1)
        if self.sequence_length > self.num_rows:
            raise ValueError(
                f"SequenceReplay: sequence_length ({self.sequence_length}) is longer than the "
                f"steps kept per env (capacity // num_envs = {self.num_rows}); raise capacity "
                "or shorten the sequences"
            )
        if not isinstance(self.sampler, UniformSampler | PrioritizedSampler):
            raise ValueError(
                f"SequenceReplay: sampler must be 'uniform' or 'prioritized', got "
                f"{type(self.sampler).__name__} (windows are sampled by their start slot)"
            )
        slots = self.capacity
        layout = state_layout(state_shapes, state_dtypes, "SequenceReplay")
        self.states = tuple(
            np.zeros((slots, *shape), dtype=torch.empty((), dtype=dtype).numpy().dtype)
            for shape, dtype in layout
        )
        #: 1 where the slot's step began an episode (the policy reset its state there).
        self.starts = np.zeros(slots, dtype=bool)

    # ------------------------------------------------------------------ writing
    def add(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        state: Sequence[Any] = (),
        episode_start: Any = None,
    ) -> None:
        """Store one vectorised env step (as :meth:`ReplayStorage.add`) with the recurrent
        ``state`` that entered it (one ``[num_envs, ...]`` tensor per state tensor) and its
        ``episode_start`` flags (default: where the previous step ended an episode). A start
        that follows a step which did not end (a resumed run whose env was reset) marks that
        step truncated: its stored next observation is then the episode's last."""
        n, t = self.num_envs, self.steps
        state = tuple(state)
        if len(state) != len(self.states):
            raise ValueError(
                f"SequenceReplay.add: state has {len(state)} tensors, the storage keeps "
                f"{len(self.states)} (state_shapes)"
            )
        prev = ((t - 1) % self.num_rows) * n
        ended = self.terminated[prev : prev + n] | self.truncated[prev : prev + n]
        if episode_start is None:
            starts = ended if t else np.ones(n, dtype=bool)
        else:
            starts = self._flags(episode_start, "episode_start", bool)
            if t and self.num_rows > 1:
                self.truncated[prev : prev + n] |= starts & ~ended
        arrays = [np.asarray(_to_numpy(s)) for s in state]
        for arr, own in zip(arrays, self.states, strict=True):
            if arr.shape != (n, *own.shape[1:]):
                raise ValueError(
                    f"SequenceReplay.add: a state tensor has shape {arr.shape}, expected "
                    f"{(n, *own.shape[1:])} (num_envs x state_shapes entry)"
                )
        row = t % self.num_rows
        lo = row * n
        # the base's sampler hook runs on the new slots; priorities are fixed up below
        super().add(obs, actions, rewards, next_obs, terminated, truncated)
        self.starts[lo : lo + n] = starts
        for arr, own in zip(arrays, self.states, strict=True):
            own[lo : lo + n] = arr
        if isinstance(self.sampler, PrioritizedSampler):
            self._update_startable(t)

    def _update_startable(self, t: int) -> None:
        """Step ``t`` was written: its slots cannot start a window yet (priority 0) and the
        slots of step ``t - sequence_length + 1`` now can (largest priority)."""
        sampler = self.sampler
        assert isinstance(sampler, PrioritizedSampler)
        n, length = self.num_envs, self.sequence_length
        if length == 1:
            return
        row = t % self.num_rows
        sampler.set_sampleable(np.arange(row * n, (row + 1) * n), False)
        first = t - length + 1
        if first >= 0:
            row = first % self.num_rows
            sampler.set_sampleable(np.arange(row * n, (row + 1) * n), True)

    # ------------------------------------------------------------------ sampling
    @property
    def num_startable(self) -> int:
        """Slots that can start a window (``sequence_length`` steps stored from them on)."""
        return max(0, min(self.steps, self.num_rows) - self.sequence_length + 1) * self.num_envs

    def can_sample(self) -> bool:
        return self.num_startable > 0

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> SequenceBatch:  # type: ignore[override]
        """``batch_size`` windows (with replacement) and their bootstrap columns."""
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise ValueError(
                f"SequenceReplay.sample: batch_size must be an int >= 1, got {batch_size!r}"
            )
        if not self.can_sample():
            raise ValueError(
                f"SequenceReplay.sample: fewer than sequence_length={self.sequence_length} "
                f"steps per env are stored ({min(self.steps, self.num_rows)}); add more first"
            )
        n, size = self.num_envs, int(batch_size)
        if isinstance(self.sampler, PrioritizedSampler):
            idx, weights = self.sampler.sample(size, len(self), generator)
        else:
            k = torch.randint(0, self.num_startable, (size,), generator=generator).numpy()
            oldest = max(0, self.steps - self.num_rows)
            idx = ((oldest + k // n) % self.num_rows) * n + k % n
            weights = None
        return self._gather(idx, weights)

    def _gather(self, idx: np.ndarray, weights: np.ndarray | None) -> SequenceBatch:
        n, length, b = self.num_envs, self.sequence_length, len(idx)
        rows, envs = np.divmod(idx, n)
        slots = (rows[None] + np.arange(length)[:, None]) % self.num_rows * n + envs[None]
        term, trunc = self.terminated[slots], self.truncated[slots]
        steps, cols = np.nonzero(trunc[:-1] & ~term[:-1])  # truncated inside the window
        extra = np.arange(len(steps))
        flat = slots.reshape(-1)
        seen = self.store.obs(flat)
        last = self.store.next_obs(slots[-1])
        final = self.store.next_obs(slots[steps, cols]) if len(steps) else None

        def columns(x: np.ndarray, last_x: np.ndarray, final_x: np.ndarray | None) -> np.ndarray:
            seq = np.concatenate([x.reshape(length, b, *x.shape[1:]), last_x[None]])
            if final_x is None:
                return seq
            copies = seq[:, cols]
            copies[steps + 1, extra] = final_x
            return np.concatenate([seq, copies], axis=1)

        if isinstance(seen, dict):
            assert isinstance(last, dict) and (final is None or isinstance(final, dict))
            obs: NpObs = {
                k: columns(v, last[k], None if final is None else final[k]) for k, v in seen.items()
            }
        else:
            assert not isinstance(last, dict) and not isinstance(final, dict)
            obs = columns(seen, last, final)
        starts = np.concatenate([self.starts[slots], np.zeros((1, b), dtype=bool)])
        starts = np.concatenate([starts, starts[:, cols]], axis=1)
        starts[steps + 1, b + extra] = False
        owners = np.concatenate([idx, idx[cols]])
        return SequenceBatch(
            obs=self._obs_tensor(obs),
            episode_starts=self._tensor(starts.astype(np.float32)),
            states=tuple(self._tensor(s[owners]) for s in self.states),
            actions=self._tensor(self.actions[slots]),
            rewards=self._tensor(self.rewards[slots]),
            terminated=self._tensor(term.astype(np.float32)),
            truncated=self._tensor(trunc.astype(np.float32)),
            weights=(
                torch.ones(b, device=self.device) if weights is None else self._tensor(weights)
            ),
            indices=self._tensor(idx),
            final_steps=self._tensor(steps.astype(np.int64)),
            final_columns=self._tensor(cols.astype(np.int64)),
        )

    # ------------------------------------------------------------------ state
    @property
    def nbytes(self) -> int:
        return super().nbytes + int(self.starts.nbytes + sum(s.nbytes for s in self.states))

    def _own_arrays(self) -> dict[str, np.ndarray]:
        states = {f"state_{i}": s for i, s in enumerate(self.states)}
        return {**super()._own_arrays(), "starts": self.starts, **states}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, num_envs={self.num_envs}, "
            f"sequence_length={self.sequence_length}, sampler={type(self.sampler).__name__}, "
            f"states={[s.shape[1:] for s in self.states]}, len={len(self)}, nbytes={self.nbytes})"
        )


__all__ = ["SequenceBatch", "SequenceReplay"]
