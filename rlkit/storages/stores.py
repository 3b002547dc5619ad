"""Stores: where a replay storage keeps observations (the part that dominates its memory).

A :class:`Store` holds the observation and the true next observation of ``num_rows x num_envs``
slots, addressed by flat index ``row * num_envs + env``. :class:`ArrayStore` keeps both as
preallocated arrays (Box and Dict observations). :class:`PixelStore` keeps every distinct
uint8 frame of frame-stacked observations once and rebuilds the stacks when sampled, so a
4-frame stack costs about one frame per transition instead of eight.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.configurable import Configurable
from rlkit.registry import Registry
from rlkit.storages.hdf5 import as_array, copy_into

logger = logging.getLogger(__name__)

#: observations as the stores see them: one array, or one array per key of a Dict space.
NpObs = np.ndarray | dict[str, np.ndarray]

_LEAF_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def numpy_dtype_for(space: spaces.Space[Any]) -> np.dtype[Any]:
    """Storage dtype of one observation leaf: uint8 stays uint8, the rest is float32 (as
    :func:`rlkit.utils.tensors.torch_dtype_for`)."""
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return np.dtype(np.uint8)
    return np.dtype(np.float32)


class Store(Configurable, ABC):
    """Observation memory of a replay storage.

    Built without arguments about the data (so ``"array"`` in a YAML config is enough); the
    storage calls :meth:`setup` with the observation space and its layout. Getters take flat
    slot indices of any shape and return NumPy arrays with that shape in front.
    """

    kind = "replay_store"
    observation_space: spaces.Space[Any]
    num_rows: int = 0
    num_envs: int = 0

    def setup(self, observation_space: spaces.Space[Any], num_rows: int, num_envs: int) -> None:
        """Check the space and allocate memory for ``num_rows x num_envs`` slots."""
        self.observation_space = observation_space
        self.num_rows = int(num_rows)
        self.num_envs = int(num_envs)
        self._allocate()

    @abstractmethod
    def _allocate(self) -> None:
        """Allocate the arrays for :attr:`num_rows` x :attr:`num_envs` slots."""

    def planned_nbytes(
        self, observation_space: spaces.Space[Any], num_rows: int, num_envs: int
    ) -> int:
        """Bytes :meth:`setup` would allocate for this layout, computed without allocating
        (and checking the space as :meth:`setup` does), so a storage can refuse a capacity
        that does not fit in memory before asking NumPy for it. 0 means unknown (a store
        that does not say is not checked)."""
        return 0

    @abstractmethod
    def add(self, row: int, obs: NpObs, next_obs: NpObs) -> None:
        """Write one vectorised step (leading dim ``num_envs``) into ``row``."""

    @abstractmethod
    def obs(self, index: np.ndarray) -> NpObs:
        """Observations of the flat slots ``index``."""

    @abstractmethod
    def next_obs(self, index: np.ndarray) -> NpObs:
        """True next observations (final observations at episode ends) of ``index``."""

    def next_obs_key(self, index: np.ndarray, key: str) -> np.ndarray:
        """One key of the next observations (Dict spaces; HER reads ``achieved_goal``)."""
        raise TypeError(f"{type(self).__name__} does not hold Dict observations")

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes allocated."""

    def reset(self) -> None:
        """Forget contents (memory stays allocated)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Tensor]:
        """Contents as named tensors."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` wrote."""

    # ------------------------------------------------------------------ helpers
    def _check(self, name: str, value: np.ndarray, shape: tuple[int, ...], where: str) -> None:
        if value.shape != (self.num_envs, *shape):
            raise ValueError(
                f"{type(self).__name__}.add: {name}{where} has shape {tuple(value.shape)}, "
                f"expected {(self.num_envs, *shape)} (num_envs x observation shape)"
            )


REPLAY_STORES: Registry[Store] = Registry("replay_store", Store)


def _load_array(name: str, target: np.ndarray, state: Mapping[str, Any]) -> None:
    if name not in state:
        raise ValueError(f"load_state_dict: missing entry {name!r}")
    shape = tuple(state[name].shape)
    if shape != target.shape:
        raise ValueError(f"load_state_dict: {name} has shape {shape}, expected {target.shape}")
    copy_into(target, state[name])


@REPLAY_STORES.register("array")
class ArrayStore(Store):
    """Observations and next observations in preallocated arrays, one per Dict key.

    Supports Box observations and Dict observations whose values are Box, Discrete,
    MultiDiscrete or MultiBinary spaces. uint8 Boxes stay uint8, everything else is float32.
    Memory: twice the observation size per transition (use :class:`PixelStore` for frame
    stacks).
    """

    def __init__(self) -> None:
        self._obs: dict[str, np.ndarray] = {}
        self._next: dict[str, np.ndarray] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._is_dict = False

    @staticmethod
    def _layout(space: spaces.Space[Any]) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """``{key: (shape, dtype)}`` of one observation (key ``""`` for a non-Dict space)."""
        if isinstance(space, spaces.Dict):
            leaves = dict(space.spaces)
        elif isinstance(space, _LEAF_SPACES):
            leaves = {"": space}
        else:
            raise TypeError(
                f"ArrayStore: unsupported observation space {space!r}; supported: Box, Discrete, "
                "MultiDiscrete, MultiBinary and a Dict of those"
            )
        layout = {}
        for key, leaf in leaves.items():
            if not isinstance(leaf, _LEAF_SPACES):
                raise TypeError(
                    f"ArrayStore: Dict key {key!r} has unsupported space {leaf!r}; supported: "
                    "Box, Discrete, MultiDiscrete, MultiBinary (no nested Dicts)"
                )
            layout[key] = (tuple(leaf.shape or ()), numpy_dtype_for(leaf))
        return layout

    def _allocate(self) -> None:
        layout = self._layout(self.observation_space)
        self._is_dict = isinstance(self.observation_space, spaces.Dict)
        slots = self.num_rows * self.num_envs
        for key, (shape, dtype) in layout.items():
            self._shapes[key] = shape
            self._obs[key] = np.zeros((slots, *shape), dtype=dtype)
            self._next[key] = np.zeros((slots, *shape), dtype=dtype)

    def planned_nbytes(
        self, observation_space: spaces.Space[Any], num_rows: int, num_envs: int
    ) -> int:
        """Exactly what :meth:`setup` allocates: two arrays (obs, next obs) per Dict key."""
        slots = int(num_rows) * int(num_envs)
        per_slot = sum(
            int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            for shape, dtype in self._layout(observation_space).values()
        )
        return 2 * slots * per_slot

    def add(self, row: int, obs: NpObs, next_obs: NpObs) -> None:
        # check everything before writing: ``row`` may hold the oldest live transition
        pairs = [
            *self._leaves("obs", obs, self._obs),
            *self._leaves("next_obs", next_obs, self._next),
        ]
        lo = row * self.num_envs
        for target, value in pairs:
            target[lo : lo + self.num_envs] = value

    def _leaves(
        self, name: str, value: NpObs, target: dict[str, np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if not self._is_dict:
            if isinstance(value, dict):
                raise TypeError(f"ArrayStore.add: {name} is a dict, but the space is not a Dict")
            self._check(name, value, self._shapes[""], "")
            return [(target[""], value)]
        if not isinstance(value, dict):
            raise TypeError(
                f"ArrayStore.add: {name} must be a dict with keys {sorted(self._shapes)}, got "
                f"{type(value).__name__}"
            )
        missing = set(self._shapes) - set(value)
        if missing:
            raise ValueError(f"ArrayStore.add: {name} lacks keys {sorted(missing)}")
        for key in self._shapes:
            self._check(name, value[key], self._shapes[key], f"[{key!r}]")
        return [(target[key], value[key]) for key in self._shapes]

    def _get(self, source: dict[str, np.ndarray], index: np.ndarray) -> NpObs:
        if self._is_dict:
            return {k: v[index] for k, v in source.items()}
        return source[""][index]

    def obs(self, index: np.ndarray) -> NpObs:
        return self._get(self._obs, index)

    def next_obs(self, index: np.ndarray) -> NpObs:
        return self._get(self._next, index)

    def next_obs_key(self, index: np.ndarray, key: str) -> np.ndarray:
        if not self._is_dict:
            return super().next_obs_key(index, key)
        return self._next[key][index]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (*self._obs.values(), *self._next.values())))

    def _named(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for prefix, source in (("obs", self._obs), ("next_obs", self._next)):
            for key, arr in source.items():
                out[f"{prefix}.{key}" if key else prefix] = arr
        return out

    def state_dict(self) -> dict[str, Tensor]:
        return {k: torch.from_numpy(v) for k, v in self._named().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name, arr in self._named().items():
            _load_array(name, arr, state)


@REPLAY_STORES.register("pixel")
class PixelStore(Store):
    """uint8 frame stacks with every frame kept once; stacks are rebuilt when sampled.

    The observation is a uint8 Box whose first axis stacks ``stack_size`` frames (gymnasium's
    ``FrameStackObservation`` gives ``(S, H, W)`` or ``(S, H, W, C)``; channel-stacked
    ``(S * C, H, W)`` works with ``stack_size=S``; default: the whole first axis). Frames go
    into one pool; each slot records which pool frames make up its observation and its next
    observation, so rebuilding a batch is one fancy index into the pool.

    Exactness does not rely on how the env pads: a new frame is written only where the data
    says so. When ``obs`` equals the previous next observation of its env (the usual
    continuation) its frames are shared; otherwise (an episode start, or anything else) its
    frames are written, equal neighbours once (gymnasium's ``padding_type="reset"`` stack of
    one repeated frame costs one frame). ``next_obs`` shares all but its newest frame with
    ``obs`` when it is ``obs`` shifted by one frame, else it is written whole. Sampling returns
    exactly the arrays that were added.

    Memory: one frame per transition, plus one or two per episode start. The pool is sized
    for ``capacity * (1 + reserve)`` frames; should many short episodes need more, it grows
    (by copying, logged at INFO), so give a larger ``reserve`` when episodes are a few steps
    long.
    """

    def __init__(self, stack_size: int | None = None, reserve: float = 1 / 16) -> None:
        if stack_size is not None and stack_size < 1:
            raise ValueError(f"PixelStore: stack_size must be >= 1 or None, got {stack_size}")
        if reserve < 0:
            raise ValueError(f"PixelStore: reserve must be >= 0, got {reserve}")
        self.stack_size = stack_size
        self.reserve = float(reserve)
        self.frames: np.ndarray = np.zeros((0,), dtype=np.uint8)
        self.obs_ids: np.ndarray = np.zeros((0,), dtype=np.int64)
        self.next_ids: np.ndarray = np.zeros((0,), dtype=np.int64)
        self.written = 0
        self.rows_added = 0
        self.last_row = -1

    @classmethod
    def supports(cls, space: spaces.Space[Any]) -> bool:
        """Whether ``space`` is what a PixelStore keeps: a uint8 Box of rank >= 2 (its first
        axis read as the frame stack)."""
        return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) >= 2

    def _layout(
        self, space: spaces.Space[Any], num_rows: int, num_envs: int
    ) -> tuple[int, tuple[int, ...], int]:
        """``(frames per stack, frame shape, pool size in frames)`` for this layout."""
        if not self.supports(space):
            raise TypeError(
                f"PixelStore: needs a uint8 Box observation space with a leading frame-stack "
                f"axis, e.g. Box(0, 255, (4, 84, 84), uint8), got {space!r}; use "
                "store='array' for other observations"
            )
        shape = tuple(space.shape or ())
        s = shape[0] if self.stack_size is None else self.stack_size
        if shape[0] % s:
            raise ValueError(
                f"PixelStore: stack_size={s} does not divide the first axis of the observation "
                f"shape {shape}"
            )
        slots = num_rows * num_envs
        pool_size = slots + max(int(slots * self.reserve), 2 * num_envs * s) + s
        return s, (shape[0] // s, *shape[1:]), pool_size

    def planned_nbytes(
        self, observation_space: spaces.Space[Any], num_rows: int, num_envs: int
    ) -> int:
        """What :meth:`setup` allocates: the frame pool and the frame ids of every slot. An
        estimate of what the store ends up using: should many short episodes need more
        frames than ``reserve`` allows, the pool grows while it fills."""
        s, frame_shape, pool_size = self._layout(observation_space, int(num_rows), int(num_envs))
        frame_bytes = int(np.prod(frame_shape, dtype=np.int64))  # uint8
        return pool_size * frame_bytes + 2 * int(num_rows) * int(num_envs) * s * 8

    def _allocate(self) -> None:
        self.s, self.frame_shape, self.pool_size = self._layout(
            self.observation_space, self.num_rows, self.num_envs
        )
        self.obs_shape = tuple(self.observation_space.shape or ())
        s = self.s
        slots = self.num_rows * self.num_envs
        self.frames = np.zeros((self.pool_size, *self.frame_shape), dtype=np.uint8)
        #: pool serials (frame numbers, ever increasing) of each slot's obs and next_obs frames
        self.obs_ids = np.zeros((slots, s), dtype=np.int64)
        self.next_ids = np.zeros((slots, s), dtype=np.int64)
        self.written = 0
        self.rows_added = 0
        self.last_row = -1

    # ------------------------------------------------------------------ writing
    def _live_min(self, row: int) -> int:
        """Smallest frame serial still referenced once ``row`` is overwritten."""
        n, t = self.num_envs, self.num_rows
        if self.rows_added == 0:
            return self.written
        if self.rows_added >= t and t == 1:
            return self.written  # the only row is being replaced
        # once full, ``row`` itself is being replaced and the next one is the oldest
        oldest = 0 if self.rows_added < t else (row + 1) % t
        lo = oldest * n
        # serials are non-decreasing in time per env, so the oldest live row holds the min
        return int(min(self.obs_ids[lo : lo + n].min(), self.next_ids[lo : lo + n].min()))

    def _reserve(self, count: int, row: int, keep: int) -> None:
        """Make room for ``count`` new frames without touching serials >= ``keep`` or any
        serial a live row still references."""
        live = min(self._live_min(row), keep)
        needed = self.written + count - live
        if needed <= self.pool_size:
            return
        new_size = max(needed + self.num_envs * self.s, int(self.pool_size * 1.25))
        logger.info(
            "PixelStore: growing the frame pool from %d to %d frames (short episodes need more "
            "than reserve=%g; pass a larger reserve to allocate it up front)",
            self.pool_size,
            new_size,
            self.reserve,
        )
        serials = np.arange(live, self.written)
        frames = np.zeros((new_size, *self.frame_shape), dtype=np.uint8)
        frames[serials % new_size] = self.frames[serials % self.pool_size]
        self.frames, self.pool_size = frames, new_size

    def _write(self, frames: np.ndarray) -> np.ndarray:
        """Append frames ``[k, *frame_shape]`` to the pool; their serials."""
        k = len(frames)
        serials = np.arange(self.written, self.written + k)
        self.frames[serials % self.pool_size] = frames
        self.written += k
        return serials

    def _write_stack(self, stack: np.ndarray) -> np.ndarray:
        """Write one stack ``[S, *frame_shape]``, equal neighbouring frames once."""
        flat = stack.reshape(self.s, -1)
        new = np.ones(self.s, dtype=bool)
        if self.s > 1:
            new[1:] = np.any(flat[1:] != flat[:-1], axis=1)
        serials = self._write(stack[new])
        return serials[np.cumsum(new) - 1]

    def add(self, row: int, obs: NpObs, next_obs: NpObs) -> None:
        if isinstance(obs, dict) or isinstance(next_obs, dict):
            raise TypeError("PixelStore.add: obs and next_obs must be arrays, not dicts")
        self._check("obs", obs, self.obs_shape, "")
        self._check("next_obs", next_obs, self.obs_shape, "")
        n, s = self.num_envs, self.s
        o = obs.reshape(n, s, *self.frame_shape)
        nx = next_obs.reshape(n, s, *self.frame_shape)
        lo = row * n
        obs_ids = np.empty((n, s), dtype=np.int64)
        next_ids = np.empty((n, s), dtype=np.int64)
        # 1. obs: shared with the previous next observation of the same env when equal
        if self.last_row >= 0:
            prev_ids = self.next_ids[self.last_row * n : self.last_row * n + n]
            prev = self.frames[prev_ids % self.pool_size]
            same = np.all((prev == o).reshape(n, -1), axis=1)
        else:
            prev_ids = np.zeros((n, s), dtype=np.int64)
            same = np.zeros(n, dtype=bool)
        # 2. next_obs: obs shifted by one frame (the usual step) or a whole new stack
        shifted = np.all((nx[:, :-1] == o[:, 1:]).reshape(n, -1), axis=1)
        count = int((~same).sum()) * s + int(shifted.sum()) + int((~shifted).sum()) * s
        keep = int(prev_ids[same].min()) if same.any() else self.written
        self._reserve(count, row, keep)
        obs_ids[same] = prev_ids[same]
        for e in np.flatnonzero(~same):
            obs_ids[e] = self._write_stack(o[e])
        if shifted.any():
            new = self._write(nx[shifted, -1])
            next_ids[shifted, :-1] = obs_ids[shifted, 1:]
            next_ids[shifted, -1] = new
        for e in np.flatnonzero(~shifted):
            next_ids[e] = self._write_stack(nx[e])
        self.obs_ids[lo : lo + n] = obs_ids
        self.next_ids[lo : lo + n] = next_ids
        self.last_row = row
        self.rows_added += 1

    # ------------------------------------------------------------------ reading
    def _stacks(self, ids: np.ndarray) -> np.ndarray:
        frames = self.frames[ids % self.pool_size]
        return frames.reshape(*ids.shape[:-1], *self.obs_shape)

    def obs(self, index: np.ndarray) -> NpObs:
        return self._stacks(self.obs_ids[index])

    def next_obs(self, index: np.ndarray) -> NpObs:
        return self._stacks(self.next_ids[index])

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes + self.obs_ids.nbytes + self.next_ids.nbytes)

    def reset(self) -> None:
        self.written = 0
        self.rows_added = 0
        self.last_row = -1

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "frames": torch.from_numpy(self.frames),
            "obs_ids": torch.from_numpy(self.obs_ids),
            "next_ids": torch.from_numpy(self.next_ids),
            "counters": torch.tensor([self.written, self.rows_added, self.last_row]),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "frames" not in state:
            raise ValueError("load_state_dict: missing entry 'frames'")
        frames = state["frames"]
        shape = tuple(frames.shape)
        if shape[1:] != self.frame_shape or len(shape) != 1 + len(self.frame_shape):
            raise ValueError(
                f"load_state_dict: frames have shape {shape[1:]}, expected {self.frame_shape}"
            )
        if shape != self.frames.shape:  # the pool grew while it was filled: take its size
            self.frames = np.empty(shape, dtype=np.uint8)
            self.pool_size = shape[0]
        copy_into(self.frames, frames)
        _load_array("obs_ids", self.obs_ids, state)
        _load_array("next_ids", self.next_ids, state)
        counters = as_array(state["counters"])
        self.written, self.rows_added, self.last_row = (int(x) for x in counters)
