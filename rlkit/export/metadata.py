"""What an exported file says about itself: spaces, agent id, input names, recurrent state
layout, rlkit version."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rlkit.policies.state import StateSpec
from rlkit.spaces import space_from_dict, space_to_dict
from rlkit.version import __version__

#: prefix of every metadata key written into exported files.
PREFIX = "rlkit."
#: name of the action output of every exported graph.
ACTION_OUTPUT = "action"
#: name of the per-row episode-start flags input of a recurrent graph (float32 ``[B]``).
EPISODE_START_INPUT = "episode_start"
#: suffix of a state tensor's output name (``actor_h`` -> ``actor_h_out``).
STATE_OUTPUT_SUFFIX = "_out"
#: the export targets that take recurrent policies.
RECURRENT_TARGETS = "onnx or torch_export"


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (how state dtypes are written into metadata)."""
    return str(dtype).removeprefix("torch.")


def parse_dtype(name: str) -> torch.dtype:
    """Inverse of :func:`dtype_name`."""
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown state dtype {name!r}")
    return dtype


def numpy_dtype(dtype: torch.dtype) -> np.dtype[Any]:
    """The NumPy dtype runners feed for a state tensor of ``dtype``."""
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except TypeError:
        raise TypeError(f"state dtype {dtype_name(dtype)} has no NumPy equivalent") from None


def state_to_json(specs: Sequence[StateSpec]) -> str:
    """The state layout as JSON: ``[{"name", "shape" (per row), "dtype"}, ...]``."""
    return json.dumps(
        [{"name": s.name, "shape": list(s.shape), "dtype": dtype_name(s.dtype)} for s in specs]
    )


def state_from_json(text: str) -> tuple[StateSpec, ...]:
    """Inverse of :func:`state_to_json`."""
    return tuple(
        StateSpec(str(e["name"]), tuple(int(d) for d in e["shape"]), parse_dtype(e["dtype"]))
        for e in json.loads(text)
    )


def recurrent_refusal(
    owner: str, policy: str | None, target: str, supported: str = RECURRENT_TARGETS
) -> str:
    """The one-line error of a target that cannot take a recurrent policy."""
    return (
        f"{owner}: the policy {policy or '(unnamed)'} is recurrent, and {target} takes "
        f"feed-forward policies only; export recurrent policies with {supported}"
    )


@dataclass
class ExportMetadata:
    """Metadata stored with every export and read back by the runners.

    ``input_names`` are the observation inputs (``obs`` or the Dict keys). A recurrent export
    also records its ``state`` layout (names, per-row shapes, dtypes, in the policy's
    :meth:`~rlkit.policies.base.Policy.state_spec` order) and the graph then takes
    :attr:`graph_input_names` (``episode_start`` and the state after the observations) and
    returns :attr:`output_names` (the next state after the action). Files written before
    recurrent export existed carry no state and load as feed-forward.
    """

    observation_space: spaces.Space[Any]
    action_space: spaces.Space[Any]
    input_names: list[str]
    agent: str | None
    rlkit_version: str = __version__
    #: the recurrent state's tensors; empty for a feed-forward policy.
    state: tuple[StateSpec, ...] = ()
    #: the policy's registry id (or class name); recorded for recurrent policies.
    policy: str | None = None

    @property
    def recurrent(self) -> bool:
        """Whether the graph carries a recurrent state between calls."""
        return bool(self.state)

    @property
    def state_names(self) -> list[str]:
        """The state inputs' names (``actor_h``, ...), in input order."""
        return [s.name for s in self.state]

    @property
    def graph_input_names(self) -> list[str]:
        """Every graph input in order: the observations, then (recurrent) ``episode_start``
        and the state tensors."""
        if not self.recurrent:
            return list(self.input_names)
        return [*self.input_names, EPISODE_START_INPUT, *self.state_names]

    @property
    def output_names(self) -> list[str]:
        """Every graph output in order: ``action``, then (recurrent) ``<state name>_out``."""
        return [ACTION_OUTPUT, *(n + STATE_OUTPUT_SUFFIX for n in self.state_names)]

    def initial_state(self, batch_size: int) -> tuple[np.ndarray, ...] | None:
        """Zeros for ``batch_size`` fresh episodes laid out by :attr:`state` (batch-first), in
        the dtypes the graph takes; None for a feed-forward export."""
        if not self.recurrent:
            return None
        return tuple(np.zeros((batch_size, *s.shape), numpy_dtype(s.dtype)) for s in self.state)

    def to_strings(self) -> dict[str, str]:
        """Flat ``{key: string}`` form (ONNX ``metadata_props``, archive extra files)."""
        strings = {
            f"{PREFIX}observation_space": json.dumps(space_to_dict(self.observation_space)),
            f"{PREFIX}action_space": json.dumps(space_to_dict(self.action_space)),
            f"{PREFIX}input_names": json.dumps(self.input_names),
            f"{PREFIX}agent": self.agent or "",
            f"{PREFIX}version": self.rlkit_version,
        }
        if self.recurrent:  # feed-forward exports keep the original keys only
            strings[f"{PREFIX}policy"] = self.policy or ""
            strings[f"{PREFIX}state"] = state_to_json(self.state)
        return strings

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each observation input's shape (without the batch axis), in input order."""
        space = self.observation_space
        subspaces = (
            [space.spaces[k] for k in self.input_names]
            if isinstance(space, spaces.Dict)
            else [space]
        )
        return {
            name: tuple(int(d) for d in (sub.shape or ()))
            for name, sub in zip(self.input_names, subspaces, strict=True)
        }

    def require_feedforward(self, owner: str, target: str) -> None:
        """Raise (one line) when this export is recurrent: for targets without state inputs."""
        if self.recurrent:
            raise ValueError(recurrent_refusal(owner, self.policy, target))

    @classmethod
    def from_onnx(cls, path: str | Path) -> ExportMetadata:
        """The metadata stored in an rlkit ONNX export (the weights are not loaded)."""
        try:
            onnx = importlib.import_module("onnx")
        except ImportError:
            raise ImportError(
                "reading ONNX exports needs onnx: `pip install rlkit[export]`"
            ) from None
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no ONNX file at {file}")
        model = onnx.load(str(file), load_external_data=False)
        return cls.from_strings({p.key: p.value for p in model.metadata_props}, str(file))

    @classmethod
    def from_strings(cls, values: dict[str, str], source: str) -> ExportMetadata:
        """Inverse of :meth:`to_strings`; ``source`` names the file in errors. Without a
        state entry (feed-forward, or a file from before recurrent export) ``state`` is
        empty."""
        try:
            state = values.get(f"{PREFIX}state")
            return cls(
                observation_space=space_from_dict(json.loads(values[f"{PREFIX}observation_space"])),
                action_space=space_from_dict(json.loads(values[f"{PREFIX}action_space"])),
                input_names=list(json.loads(values[f"{PREFIX}input_names"])),
                agent=values.get(f"{PREFIX}agent") or None,
                rlkit_version=values.get(f"{PREFIX}version", "?"),
                state=state_from_json(state) if state else (),
                policy=values.get(f"{PREFIX}policy") or None,
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(
                f"{source} has no readable rlkit metadata ({e}); export it with rlkit.export"
            ) from None
