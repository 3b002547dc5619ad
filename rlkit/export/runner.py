"""Common ``act()`` of exported policies (ONNX, torch.export, TensorRT, Ascend OM)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rlkit.export.metadata import ExportMetadata, numpy_dtype
from rlkit.utils.tensors import torch_dtype_for

#: a recurrent export's state as NumPy arrays, batch-first, in the metadata's state order.
NumpyState = tuple[np.ndarray, ...]


class ExportedPolicy(ABC):
    """Runs an exported acting path with the same ``act()`` as an agent.

    ``act(obs)`` takes a batch (or one unbatched observation) shaped like the observation space,
    a dict for Dict spaces, and returns env-ready actions in the action space's dtype. Exported
    graphs are deterministic (the distribution's mode).

    A recurrent export (``recurrent``) keeps its state between ``act()`` calls: the first call
    (and the first after :meth:`reset`) starts from the initial state, and
    ``act(obs, episode_start=flags)`` resets the rows whose flag is 1 (pass the previous
    step's ``terminated | truncated``; ``None`` continues every row). The state has one row
    per observation, so the batch size stays fixed until :meth:`reset` (a different batch
    size is an error). :meth:`act_with_state` is the same step with the state passed in and
    returned instead, as an agent's ``act_with_state``.
    """

    def __init__(self, metadata: ExportMetadata) -> None:
        self.metadata = metadata
        self.observation_space = metadata.observation_space
        self.action_space = metadata.action_space
        self._state: NumpyState | None = None

    @abstractmethod
    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Execute the graph on positional inputs (in :attr:`graph_input_names` order) and
        return the action output."""

    def run_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Execute the graph and return every output (:attr:`output_names` order): the action,
        then for a recurrent export the next state. Runners of recurrent graphs override it."""
        return [self.run(inputs)]

    @property
    def input_names(self) -> list[str]:
        """The observation inputs' names (``obs`` or the Dict keys)."""
        return self.metadata.input_names

    @property
    def graph_input_names(self) -> list[str]:
        """Every graph input: the observations, then (recurrent) ``episode_start`` and the
        state tensors."""
        return self.metadata.graph_input_names

    @property
    def output_names(self) -> list[str]:
        """Every graph output: ``action``, then (recurrent) ``<state name>_out``."""
        return self.metadata.output_names

    @property
    def recurrent(self) -> bool:
        """Whether the export carries a state between calls."""
        return self.metadata.recurrent

    @property
    def state(self) -> NumpyState | None:
        """The state :meth:`act` feeds next (batch-first arrays named by
        ``metadata.state_names``); None when the next call starts from the initial state
        (before the first call, after :meth:`reset`, and always for feed-forward exports)."""
        return self._state

    @state.setter
    def state(self, value: Sequence[np.ndarray] | None) -> None:
        if value is None:
            self._state = None
            return
        if not self.recurrent:
            raise ValueError(
                f"{type(self).__name__}.state: the policy is feed-forward and keeps no state"
            )
        arrays = tuple(np.asarray(v) for v in value)
        batch = int(arrays[0].shape[0]) if arrays else 0
        self._state = self._check_state(arrays, batch, f"{type(self).__name__}.state")

    def reset(self) -> None:
        """Start over: the next :meth:`act` starts every row from the initial state (and may
        take a new batch size). Nothing to do for feed-forward exports."""
        self._state = None

    def initial_state(self, batch_size: int) -> NumpyState | None:
        """The state of ``batch_size`` fresh episodes (zeros); None when feed-forward."""
        return self.metadata.initial_state(batch_size)

    def inputs_from_obs(self, obs: Any) -> tuple[list[np.ndarray], bool]:
        """Positional observation inputs in their storage dtypes, and whether ``obs`` was
        unbatched."""
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

    def act(self, obs: Any, deterministic: bool = True, *, episode_start: Any = None) -> np.ndarray:
        """Env-ready actions for a batch of observations (or for a single one).

        For a recurrent export the state is kept between calls (see the class doc);
        ``episode_start`` has one flag per observation (1: the row begins an episode and its
        state is reset first). Feed-forward exports ignore ``episode_start``.
        """
        if not self.recurrent:
            if not deterministic:
                raise ValueError(
                    "exported policies act deterministically (the distribution's mode)"
                )
            inputs, single = self.inputs_from_obs(obs)
            return self._actions(self.run(inputs), single)
        owner = f"{type(self).__name__}.act"
        if self._state is not None:
            rows = int(self._state[0].shape[0])
            batch = self._batch_of(obs)
            if batch != rows:
                raise ValueError(
                    f"{owner}: {batch} observation(s), but the kept state has {rows} row(s) "
                    "(one per observation of the previous call); call reset() to start over "
                    "with a new batch size"
                )
        actions, state = self._step(obs, self._state, episode_start, deterministic, owner)
        self._state = state
        return actions

    def act_with_state(
        self,
        obs: Any,
        state: Sequence[np.ndarray] | None = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, NumpyState | None]:
        """Env-ready actions and the next state, leaving the kept state (:attr:`state`) alone.
        ``state=None`` starts fresh episodes; ``episode_start`` (one flag per observation)
        resets those rows first. The state is batch-first (one row per observation, also for
        a single observation). Feed-forward exports return ``None`` as the state."""
        if not self.recurrent:
            return self.act(obs, deterministic), None
        return self._step(
            obs, state, episode_start, deterministic, f"{type(self).__name__}.act_with_state"
        )

    def _step(
        self,
        obs: Any,
        state: Sequence[np.ndarray] | None,
        episode_start: Any,
        deterministic: bool,
        owner: str,
    ) -> tuple[np.ndarray, NumpyState]:
        if not deterministic:
            raise ValueError("exported policies act deterministically (the distribution's mode)")
        inputs, single = self.inputs_from_obs(obs)
        batch = int(inputs[0].shape[0])
        current = self.metadata.initial_state(batch) if state is None else tuple(state)
        assert current is not None
        current = self._check_state(current, batch, owner)
        starts = self._episode_start(episode_start, batch, owner)
        outputs = self.run_outputs([*inputs, starts, *current])
        expected = len(self.output_names)
        if len(outputs) != expected:
            raise RuntimeError(
                f"{owner}: the graph returned {len(outputs)} outputs, expected {expected} "
                f"({', '.join(self.output_names)})"
            )
        next_state = tuple(np.asarray(x) for x in outputs[1:])
        return self._actions(outputs[0], single), next_state

    def _actions(self, raw: np.ndarray, single: bool) -> np.ndarray:
        actions = np.asarray(raw)
        dtype = self.action_space.dtype
        if dtype is not None:
            actions = actions.astype(dtype, copy=False)
        return actions[0] if single else actions

    def _batch_of(self, obs: Any) -> int:
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            if not isinstance(obs, dict):
                raise TypeError(f"expected a dict observation for {space!r}, got {type(obs)}")
            key = self.input_names[0]
            first, sub = obs[key], space.spaces[key]
        else:
            first, sub = obs, space
        shape = np.shape(first)
        return 1 if len(shape) == len(sub.shape or ()) else int(shape[0])

    def _check_state(self, state: Sequence[np.ndarray], batch: int, owner: str) -> NumpyState:
        specs = self.metadata.state
        if len(state) != len(specs):
            raise ValueError(
                f"{owner}: state has {len(state)} arrays, expected {len(specs)} "
                f"({', '.join(self.metadata.state_names)})"
            )
        out = []
        for array, spec in zip(state, specs, strict=True):
            value = np.asarray(array)
            expected = (batch, *spec.shape)
            if value.shape != expected:
                raise ValueError(
                    f"{owner}: state array {spec.name!r} has shape {value.shape}, expected "
                    f"{expected} (batch-first, one row per observation)"
                )
            out.append(value.astype(numpy_dtype(spec.dtype), copy=False))
        return tuple(out)

    @staticmethod
    def _episode_start(episode_start: Any, batch: int, owner: str) -> np.ndarray:
        if episode_start is None:
            return np.zeros(batch, np.float32)
        starts = np.asarray(episode_start, dtype=np.float32).reshape(-1)
        if starts.shape[0] != batch:
            raise ValueError(
                f"{owner}: episode_start has {starts.shape[0]} flag(s) for {batch} "
                "observation(s); pass one flag per observation (1 where an episode begins)"
            )
        return starts
