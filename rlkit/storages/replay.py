"""Replay storage for off-policy agents, composed of a store, a sampler and options.

``ReplayStorage = store (where observations live) x sampler (which slots come back)`` plus
n-step returns and hindsight relabelling, computed when a batch is sampled. Transitions sit in
a ring of ``capacity // num_envs`` rows by ``num_envs`` columns; env step ``s`` of every env is
row ``s % rows``, so each env's history is contiguous and n-step windows never mix envs.

n-step windows are computed with what is stored: a window stops at the episode's end, and for
the newest transitions (whose ``n`` next steps are not all stored yet) it stops at the newest
step, giving a ``k``-step target ``r_t + ... + g^(k-1) r_(t+k-1) + g^k V(s_(t+k))`` with the
matching discount ``g^k``. That target is exact for those steps, so every stored transition
can be sampled.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.configurable import NotSerializableError, build_from_spec, build_primitive, to_json
from rlkit.storages.base import STORAGES, Storage
from rlkit.storages.hdf5 import as_array, copy_into, open_arrays, write_arrays
from rlkit.storages.her import HindsightRelabeler
from rlkit.storages.rollout import action_layout
from rlkit.storages.samplers import PrioritizedSampler, Sampler
from rlkit.storages.stores import ArrayStore, NpObs, PixelStore, Store
from rlkit.trust import reading
from rlkit.types import Obs
from rlkit.version import __version__


@dataclass
class ReplayBatch:
    """A sampled batch; the TD target of any agent is ``rewards + discounts * V(next_obs)``."""

    #: observations ``[B, ...]`` (uint8 images stay uint8).
    obs: Obs
    #: ``[B]`` int64 for Discrete, ``[B, A]`` float32 for Box, ``[B, K]`` for Multi* spaces.
    actions: Tensor
    #: n-step discounted reward sums ``[B]`` float32, stopping at the episode's end.
    rewards: Tensor
    #: the observation ``k`` steps later, or the episode's final observation.
    next_obs: Obs
    #: ``gamma ** k`` for the ``k`` summed steps (``(-gamma) ** k`` for alternating turns),
    #: 0 where the episode terminated within them.
    discounts: Tensor
    #: 1 where the episode ended (terminated or truncated) within the ``k`` steps.
    dones: Tensor
    #: importance-sampling weights ``[B]`` (ones for uniform sampling).
    weights: Tensor
    #: slot indices ``[B]`` int64, to pass back to :meth:`ReplayStorage.update_priorities`.
    indices: Tensor

    def map_obs(self, fn: Callable[[Obs], Obs]) -> ReplayBatch:
        """This batch with ``fn`` applied to ``obs`` and to ``next_obs`` (each called once:
        normalisation, augmentation)."""
        return dataclasses.replace(self, obs=fn(self.obs), next_obs=fn(self.next_obs))


def _to_numpy(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, Mapping):
        return {k: _to_numpy(v) for k, v in x.items()}
    return np.asarray(x)


#: environment variable that turns off the memory check of replay storages (``=1``).
SKIP_MEMORY_CHECK = "RLKIT_SKIP_MEMORY_CHECK"


def available_memory_bytes() -> int | None:
    """Bytes this machine can still give without swapping, or None when that is unknown:
    psutil's ``virtual_memory().available`` when psutil is installed, else Linux's
    ``MemAvailable`` (``/proc/meminfo``, which counts reclaimable page cache), else the free
    pages (``os.sysconf``). Container (cgroup) limits are not read."""
    try:
        return int(importlib.import_module("psutil").virtual_memory().available)
    except Exception:  # not installed, or no answer on this platform
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # not on this platform
        return None


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def check_fits(
    owner: str,
    capacity: int,
    num_envs: int,
    planned: Callable[[int], int],
    available: int,
    note: str = "",
) -> None:
    """Raise a one-line ``MemoryError`` when ``planned(capacity // num_envs)`` (bytes for that
    many rows of ``num_envs`` transitions; non-decreasing in the rows) exceeds ``available``
    bytes, naming ``owner``, the capacity, the bytes needed and available, the largest
    capacity that fits and ``note`` (e.g. a cheaper store)."""
    rows = capacity // num_envs
    needed = planned(rows)
    if needed <= available:
        return
    low, high = 0, rows  # planned(high) does not fit; find the most rows that do
    while high - low > 1:
        mid = (low + high) // 2
        if planned(mid) <= available:
            low = mid
        else:
            high = mid
    fits = low * num_envs
    largest = (
        f"the largest capacity that fits is {fits}"
        if fits
        else f"no capacity fits (one row of {num_envs} transitions needs {_gib(planned(1))})"
    )
    extra = f"; {note}" if note else ""
    raise MemoryError(
        f"{owner}: capacity={capacity} needs {_gib(needed)} of memory, but {_gib(available)} "
        f"is available; {largest}{extra} (set {SKIP_MEMORY_CHECK}=1 to allocate anyway)"
    )


def _sampler_nbytes(sampler: Sampler, slots: int) -> int:
    """Bytes ``sampler`` allocates for ``slots`` slots: a prioritized sampler's sum tree (two
    float64 arrays of twice the slots rounded up to a power of two); others keep none."""
    if isinstance(sampler, PrioritizedSampler):
        size = 1 << max(0, slots - 1).bit_length()
        return 2 * (2 * size) * 8
    return sampler.nbytes


def _int_arg(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"ReplayStorage: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@STORAGES.register("replay")
class ReplayStorage(Storage):
    """Ring-buffer replay storage of ``capacity`` transitions across ``num_envs`` envs.

    - ``capacity``: total transitions kept (required; no silent default that allocates
      gigabytes). Each env gets ``capacity // num_envs`` slots, all allocated up front and
      reported by :attr:`nbytes`.
    - ``store``: ``"array"`` (default; Box and Dict observations), ``"pixel"`` (uint8 frame
      stacks, each frame kept once) or a :class:`Store`.
    - ``sampler``: ``"uniform"`` (default), ``"prioritized"`` or a :class:`Sampler`.
    - ``n_step``/``gamma``: n-step returns computed at sampling time, per env (see the module
      doc for windows that are not complete yet).
    - ``her``: a :class:`HindsightRelabeler` for goal-conditioned Dict observations.
    - ``alternating``: every step hands the move to the opponent of a two-player zero-sum
      game (:mod:`rlkit.selfplay.turns`): the next observation's value is the opponent's, so
      returns and bootstraps discount with ``-gamma`` (negamax: ``r_t - gamma r_(t+1) + ...``
      and the discount ``(-gamma)^k``).
    - ``device``: where sampled batches go; the memory itself stays in host RAM.

    ``add`` takes the TRUE next observation (``info["final_obs"]`` where an episode ended).

    Before allocating, the storage compares what it plans to allocate
    (:meth:`planned_nbytes`) with the memory available (:func:`available_memory_bytes`) and
    raises a one-line ``MemoryError`` naming the largest capacity that fits, rather than
    letting NumPy fail (or the buffer exhaust memory as its lazily mapped pages fill, hours
    into a run). Set the environment variable ``RLKIT_SKIP_MEMORY_CHECK=1`` to skip it.
    """

    #: whether ``sample(k * B)`` sliced into ``k`` row blocks gives ``k`` batches of ``B``
    #: (the off-policy loop then draws a round's uniform batches in one call).
    rows_independent: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        capacity: int,
        num_envs: int = 1,
        store: str | Mapping[str, Any] | Store | None = None,
        sampler: str | Mapping[str, Any] | Sampler | None = None,
        n_step: int = 1,
        gamma: float = 0.99,
        her: HindsightRelabeler | Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        alternating: bool = False,
    ) -> None:
        capacity = _int_arg(capacity, "capacity", 1)
        num_envs = _int_arg(num_envs, "num_envs", 1)
        if capacity < num_envs:
            raise ValueError(
                f"ReplayStorage: capacity ({capacity}) must be at least num_envs ({num_envs}): "
                "each env needs one slot"
            )
        self.n_step = _int_arg(n_step, "n_step", 1)
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"ReplayStorage: gamma must be in [0, 1], got {gamma}")
        self.gamma = float(gamma)
        if not isinstance(alternating, bool):
            raise TypeError(f"ReplayStorage: alternating must be a bool, got {alternating!r}")
        self.alternating = alternating
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_envs = num_envs
        self.num_rows = capacity // num_envs
        self.device = torch.device(device)
        slots = self.num_rows * num_envs
        try:
            self.action_shape, dtype = action_layout(action_space)
        except TypeError:
            raise TypeError(
                f"ReplayStorage: unsupported action space {action_space!r}; supported: "
                "Discrete, MultiDiscrete, MultiBinary, Box"
            ) from None

        built_store = build_primitive("replay_store", store or "array", Store, "ReplayStorage")
        built_sampler = build_primitive(
            "replay_sampler", sampler or "uniform", Sampler, "ReplayStorage"
        )
        assert built_store is not None and built_sampler is not None
        if built_store.num_rows or built_sampler.capacity:
            raise ValueError(
                "ReplayStorage: this store or sampler object already belongs to another "
                "ReplayStorage; pass a new one (or its id)"
            )
        self.store: Store = built_store
        self.sampler: Sampler = built_sampler
        self.her = build_primitive("replay_relabeler", her, HindsightRelabeler, "ReplayStorage")
        if self.her is not None:
            HindsightRelabeler.check_space(observation_space, "ReplayStorage")
        self._np_action_dtype = np.dtype(np.int64 if dtype == torch.int64 else np.float32)
        self._check_memory(capacity)
        self.store.setup(observation_space, self.num_rows, num_envs)
        self.sampler.setup(slots)

        self.actions = np.zeros((slots, *self.action_shape), dtype=self._np_action_dtype)
        self.rewards = np.zeros(slots, dtype=np.float32)
        self.terminated = np.zeros(slots, dtype=bool)
        self.truncated = np.zeros(slots, dtype=bool)
        #: env step of the first / last step of each slot's episode (-1: still running)
        self.episode_start = np.zeros(slots, dtype=np.int64)
        self.episode_end = np.full(slots, -1, dtype=np.int64)
        #: first step of each env's running episode
        self.current_start = np.zeros(num_envs, dtype=np.int64)
        #: vectorised steps added so far (each added ``num_envs`` transitions)
        self.steps = 0
        signed = -self.gamma if alternating else self.gamma  # negamax: the opponent's value
        self._gamma32 = np.float32(signed)
        self._gamma_pows = signed ** np.arange(self.n_step + 1, dtype=np.float32)
        self._cpu = self.device.type == "cpu"

    # ------------------------------------------------------------------ sizes
    @property
    def capacity(self) -> int:
        """Transitions kept at most (``capacity // num_envs`` per env)."""
        return self.num_rows * self.num_envs

    def __len__(self) -> int:
        return min(self.steps, self.num_rows) * self.num_envs

    def can_sample(self) -> bool:
        """Whether :meth:`sample` has something to draw (any stored transition)."""
        return len(self) > 0

    @property
    def nbytes(self) -> int:
        """Bytes allocated by the store, the transition fields and the sampler."""
        own = (
            self.actions,
            self.rewards,
            self.terminated,
            self.truncated,
            self.episode_start,
            self.episode_end,
            self.current_start,
        )
        return int(self.store.nbytes + self.sampler.nbytes + sum(a.nbytes for a in own))

    def planned_nbytes(self, num_rows: int | None = None) -> int:
        """Bytes this storage allocates for ``num_rows`` rows of ``num_envs`` transitions
        (default: its own rows), computed without allocating: the store's plan
        (:meth:`Store.planned_nbytes`, an estimate for a :class:`PixelStore`), the transition
        fields and the sampler's state."""
        rows = self.num_rows if num_rows is None else int(num_rows)
        slots = rows * self.num_envs
        action_size = int(np.prod(self.action_shape, dtype=np.int64))
        # actions, rewards (float32), terminated, truncated (bool), episode start/end (int64)
        per_slot = action_size * self._np_action_dtype.itemsize + 4 + 1 + 1 + 8 + 8
        store = self.store.planned_nbytes(self.observation_space, rows, self.num_envs)
        fields = slots * per_slot + self.num_envs * 8  # and each env's current episode start
        return store + fields + _sampler_nbytes(self.sampler, slots)

    def _check_memory(self, capacity: int) -> None:
        """Refuse (one-line ``MemoryError``) a capacity whose planned memory exceeds what is
        available, unless ``RLKIT_SKIP_MEMORY_CHECK`` is set or the memory is unknown."""
        if os.environ.get(SKIP_MEMORY_CHECK, "").strip() not in ("", "0"):
            return
        available = available_memory_bytes()
        if available is None:
            return
        note = ""
        space = self.observation_space
        if (
            isinstance(self.store, ArrayStore)
            and PixelStore.supports(space)
            and len(space.shape or ()) >= 3
        ):
            pixel = PixelStore().planned_nbytes(space, self.num_rows, self.num_envs)
            own = self.planned_nbytes() - self.store.planned_nbytes(
                space, self.num_rows, self.num_envs
            )
            note = (
                f"store='pixel' would need about {_gib(pixel + own)} (each frame of uint8 "
                "frame stacks kept once)"
            )
        check_fits(
            type(self).__name__, capacity, self.num_envs, self.planned_nbytes, available, note
        )

    def locate(self, indices: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, envs)`` of slot indices: the vectorised env step (0 = the first ``add``)
        each stored transition came from, and its env. Handy to match batches to logs."""
        idx = np.asarray(_to_numpy(indices), dtype=np.int64)
        rows, envs = np.divmod(idx, self.num_envs)
        return self.steps - 1 - (self.steps - 1 - rows) % self.num_rows, envs

    # ------------------------------------------------------------------ writing
    def _flags(self, value: Any, name: str, dtype: type) -> np.ndarray:
        arr: np.ndarray = np.asarray(_to_numpy(value)).astype(dtype, copy=False).reshape(-1)
        if arr.shape != (self.num_envs,):
            raise ValueError(
                f"ReplayStorage.add: {name} must have one entry per env ({self.num_envs}), got "
                f"shape {np.shape(value)}"
            )
        return arr

    def add(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
    ) -> None:
        """Store one vectorised env step; every argument has leading dim ``num_envs`` (NumPy
        arrays or tensors, dicts of them for Dict spaces). ``next_obs`` is the true next
        observation: the final one where an episode ended, not the reset observation."""
        n, t = self.num_envs, self.steps
        row = t % self.num_rows
        lo = row * n
        act = _to_numpy(actions)
        if act.size != n * int(np.prod(self.action_shape, dtype=np.int64)):
            raise ValueError(
                f"ReplayStorage.add: actions has shape {act.shape}, expected "
                f"{(n, *self.action_shape)} (num_envs x action shape)"
            )
        rew = self._flags(rewards, "rewards", np.float32)
        term = self._flags(terminated, "terminated", bool)
        trunc = self._flags(truncated, "truncated", bool)
        self.store.add(row, _to_numpy(obs), _to_numpy(next_obs))
        self.actions[lo : lo + n] = act.reshape(n, *self.action_shape)
        self.rewards[lo : lo + n] = rew
        self.terminated[lo : lo + n] = term
        self.truncated[lo : lo + n] = trunc
        self.episode_start[lo : lo + n] = self.current_start
        self.episode_end[lo : lo + n] = -1
        done = term | trunc
        if done.any():
            for e in np.flatnonzero(done):
                first = max(int(self.current_start[e]), t - self.num_rows + 1)
                rows = np.arange(first, t + 1) % self.num_rows
                self.episode_end[rows * n + e] = t
                self.current_start[e] = t + 1
        self.steps = t + 1
        self.sampler.on_add(np.arange(lo, lo + n))

    # ------------------------------------------------------------------ sampling
    def _tensor(self, x: np.ndarray) -> Tensor:
        out = torch.from_numpy(x)
        return out if self._cpu else out.to(self.device, non_blocking=True)

    def _obs_tensor(self, x: NpObs) -> Obs:
        if isinstance(x, dict):
            return {k: self._tensor(v) for k, v in x.items()}
        return self._tensor(x)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> ReplayBatch:
        """``batch_size`` transitions (with replacement) chosen by the sampler; ``generator``
        (a CPU ``torch.Generator``) makes the draw reproducible."""
        size = len(self)
        if size == 0:
            raise ValueError("ReplayStorage.sample: the storage is empty; add transitions first")
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise ValueError(
                f"ReplayStorage.sample: batch_size must be an int >= 1, got {batch_size!r}"
            )
        batch_size = int(batch_size)
        idx, weights = self.sampler.sample(batch_size, size, generator)
        if self.n_step == 1 and self.her is None:
            term = self.terminated[idx]
            done = term | self.truncated[idx]
            obs, next_obs = self.store.obs(idx), self.store.next_obs(idx)
            rewards = self.rewards[idx]
            discounts = self._gamma32 * ~term
        else:
            obs, next_obs, rewards, discounts, done = self._windows(idx, generator)
        return ReplayBatch(
            obs=self._obs_tensor(obs),
            actions=self._tensor(self.actions[idx]),
            rewards=self._tensor(rewards),
            next_obs=self._obs_tensor(next_obs),
            discounts=self._tensor(discounts),
            dones=self._tensor(done.astype(np.float32)),
            weights=(
                torch.ones(batch_size, device=self.device)
                if weights is None
                else self._tensor(weights)
            ),
            indices=self._tensor(idx),
        )

    def _windows(
        self, idx: np.ndarray, generator: torch.Generator | None
    ) -> tuple[NpObs, NpObs, np.ndarray, np.ndarray, np.ndarray]:
        """n-step targets (and HER relabelling) for the slots ``idx``: a loop over the ``n``
        window offsets, each step vectorised over the batch."""
        n, rows_total = self.num_envs, self.num_rows
        rows, envs = np.divmod(idx, n) if n > 1 else (idx, np.zeros_like(idx))
        # steps stored from each sampled one on (itself included)
        available = (self.steps - 1 - rows) % rows_total + 1
        slots = [idx]
        for j in range(1, self.n_step):
            r = rows + j
            np.subtract(r, rows_total, out=r, where=r >= rows_total)
            slots.append(r * n + envs if n > 1 else r)
        rewards = [self.rewards[f] for f in slots]
        terms = [self.terminated[f] for f in slots]
        ends = [t | self.truncated[f] for t, f in zip(terms, slots, strict=True)]
        obs, goals, relabel = self.store.obs(idx), None, None
        if self.her is not None:
            relabel, goal_steps = self.her.choose(
                self.steps - available,
                self.episode_start[idx],
                self.episode_end[idx],
                oldest=max(0, self.steps - rows_total),
                newest=self.steps - 1,
                generator=generator,
            )
            relabel = np.flatnonzero(relabel)
            if relabel.size:
                goals = self._relabel(relabel, goal_steps, envs, slots, rewards, terms, ends)
                assert isinstance(obs, dict)
                obs["desired_goal"][relabel] = goals
        # step j counts if it is stored and no episode ended before it
        returns = rewards[0].copy()
        last, term_last, end_last = idx, terms[0], ends[0]
        k = np.ones(len(idx), dtype=np.int64)
        alive = ~ends[0]
        for j in range(1, self.n_step):
            ok = alive & (available > j)
            returns += self._gamma_pows[j] * rewards[j] * ok
            k += ok
            last = np.where(ok, slots[j], last)
            term_last = np.where(ok, terms[j], term_last)
            end_last = np.where(ok, ends[j], end_last)
            alive = ok & ~ends[j]
        discounts = self._gamma_pows[k] * ~term_last
        next_obs = self.store.next_obs(last)
        if goals is not None and relabel is not None:
            assert isinstance(next_obs, dict)
            next_obs["desired_goal"][relabel] = goals
        return obs, next_obs, returns, discounts, end_last

    def _relabel(
        self,
        relabel: np.ndarray,
        goal_steps: np.ndarray,
        envs: np.ndarray,
        slots: list[np.ndarray],
        rewards: list[np.ndarray],
        terms: list[np.ndarray],
        ends: list[np.ndarray],
    ) -> np.ndarray:
        """New goals for the batch rows ``relabel``; rewrites their rewards (and terminations
        with a ``terminated_fn``) for every window step in place. Returns the goals."""
        assert self.her is not None
        n, m, steps = self.num_envs, relabel.size, self.n_step
        goal_slots = goal_steps[relabel] % self.num_rows * n + envs[relabel]
        goals = self.store.next_obs_key(goal_slots, "achieved_goal")
        window = np.stack([f[relabel] for f in slots], axis=1)  # [M, n]
        achieved = self.store.next_obs_key(window, "achieved_goal").reshape(
            m * steps, *goals.shape[1:]
        )
        desired = np.repeat(goals, steps, axis=0)
        new_rewards = self.her.rewards(achieved, desired).reshape(m, steps)
        new_terms = self.her.terminated(achieved, desired)
        for j in range(steps):
            rewards[j][relabel] = new_rewards[:, j]
            if new_terms is not None:
                # success under the new goal ends the episode; a stored end still cuts the
                # window (the env reset there) but only the new goal decides termination
                terms[j] = terms[j].copy()
                terms[j][relabel] = new_terms.reshape(m, steps)[:, j]
                ends[j] = ends[j] | terms[j]
        return goals

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """New priorities (``|TD error|``, shape ``[B]``) for the slots of a sampled batch;
        a no-op for samplers without priorities."""
        self.sampler.update_priorities(
            np.asarray(_to_numpy(indices), dtype=np.int64).reshape(-1),
            np.asarray(_to_numpy(priorities), dtype=np.float64).reshape(-1),
        )

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        self.steps = 0
        self.current_start[:] = 0
        self.store.reset()
        self.sampler.reset()

    def _own_arrays(self) -> dict[str, np.ndarray]:
        return {
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "episode_start": self.episode_start,
            "episode_end": self.episode_end,
            "current_start": self.current_start,
        }

    def state_dict(self) -> dict[str, Tensor]:
        """Contents, positions, episode bookkeeping and sampler state as plain tensors (they
        share memory with the storage; clone them to keep a snapshot)."""
        out: dict[str, Tensor] = {"steps": torch.tensor(self.steps, dtype=torch.int64)}
        out.update({k: torch.from_numpy(v) for k, v in self._own_arrays().items()})
        out.update({f"store.{k}": v for k, v in self.store.state_dict().items()})
        out.update({f"sampler.{k}": v for k, v in self.sampler.state_dict().items()})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` (or :meth:`save`) wrote, checking names and shapes."""
        own = self._own_arrays()
        missing = sorted({"steps", *own} - set(state))
        if missing:
            raise ValueError(f"ReplayStorage.load_state_dict: missing entries {missing}")
        for name, arr in own.items():
            shape = tuple(state[name].shape)
            if shape != arr.shape:
                raise ValueError(
                    f"ReplayStorage.load_state_dict: {name} has shape {shape}, expected "
                    f"{arr.shape} (a storage of another capacity, num_envs or action space?)"
                )
        for prefix, part in (("store.", self.store), ("sampler.", self.sampler)):
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            try:
                part.load_state_dict(sub)
            except ValueError as e:
                raise ValueError(f"ReplayStorage.load_state_dict: {prefix}{e}") from None
        for name, arr in own.items():
            copy_into(arr, state[name])
        self.steps = int(as_array(state["steps"]))

    # ------------------------------------------------------------------ files
    def _config(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The JSON spec, and the HER settings when its functions have no JSON form."""
        try:
            return self.spec(), None
        except NotSerializableError:
            if self.her is None:
                raise
        her = self.her
        args = {k: v for k, v in self.init_args.items() if k != "her"}
        spec = {"id": self.registry_id, **{k: to_json(v) for k, v in args.items()}, "her": None}
        return spec, {"strategy": her.strategy, "k": her.k}

    def save(self, path: str | Path, compression: str | None = None) -> Path:
        """Write the whole storage (config, contents, positions, priorities, episode
        bookkeeping) to an HDF5 file, atomically. ``compression`` is an h5py filter name
        such as ``"gzip"`` or ``"lzf"`` (slower to write, smaller files)."""
        spec, her = self._config()
        attrs: dict[str, Any] = {"config": spec, "rlkit_version": __version__}
        if her is not None:
            attrs["her_without_config"] = her
        arrays = {k: v.numpy() for k, v in self.state_dict().items()}
        return write_arrays(path, arrays, attrs, compression)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        trust_code: bool = False,
        **overrides: Any,
    ) -> ReplayStorage:
        """Rebuild a storage written by :meth:`save`. ``overrides`` replace constructor
        arguments, e.g. ``her=HindsightRelabeler(env.unwrapped.compute_reward)`` when the
        saved relabeler's reward function was a Python callable. A HER function the file
        names by import path is imported only with ``trust_code=True`` (registered goal
        function ids need nothing; see :mod:`rlkit.trust`)."""
        with reading(f"replay file {path}", trust_code), open_arrays(path) as (datasets, attrs):
            her = attrs.get("her_without_config")
            if her is not None and "her" not in overrides:
                raise ValueError(
                    f"{path} was saved with a HindsightRelabeler whose reward_fn has no JSON "
                    f"form (strategy={her['strategy']!r}, k={her['k']}); pass "
                    "her=HindsightRelabeler(reward_fn, ...) to ReplayStorage.load"
                )
            storage = build_from_spec("storage", attrs["config"], device=str(device), **overrides)
            if not isinstance(storage, ReplayStorage):
                raise TypeError(f"{path} holds a {type(storage).__name__}, not a ReplayStorage")
            # datasets are read straight into the new storage's arrays
            storage.load_state_dict(datasets)
        return storage

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, num_envs={self.num_envs}, "
            f"store={type(self.store).__name__}, sampler={type(self.sampler).__name__}, "
            f"n_step={self.n_step}, len={len(self)}, nbytes={self.nbytes})"
        )
