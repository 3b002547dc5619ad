"""What an exported file says about itself: spaces, agent id, input names, rlkit version."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gymnasium import spaces

from rlkit.spaces import space_from_dict, space_to_dict
from rlkit.version import __version__

#: prefix of every metadata key written into exported files.
PREFIX = "rlkit."


@dataclass
class ExportMetadata:
    """Metadata stored with every export and read back by the runners."""

    observation_space: spaces.Space[Any]
    action_space: spaces.Space[Any]
    input_names: list[str]
    agent: str | None
    rlkit_version: str = __version__

    def to_strings(self) -> dict[str, str]:
        """Flat ``{key: string}`` form (ONNX ``metadata_props``, archive extra files)."""
        return {
            f"{PREFIX}observation_space": json.dumps(space_to_dict(self.observation_space)),
            f"{PREFIX}action_space": json.dumps(space_to_dict(self.action_space)),
            f"{PREFIX}input_names": json.dumps(self.input_names),
            f"{PREFIX}agent": self.agent or "",
            f"{PREFIX}version": self.rlkit_version,
        }

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each graph input's observation shape (without the batch axis), in input order."""
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
        """Inverse of :meth:`to_strings`; ``source`` names the file in errors."""
        try:
            return cls(
                observation_space=space_from_dict(json.loads(values[f"{PREFIX}observation_space"])),
                action_space=space_from_dict(json.loads(values[f"{PREFIX}action_space"])),
                input_names=list(json.loads(values[f"{PREFIX}input_names"])),
                agent=values.get(f"{PREFIX}agent") or None,
                rlkit_version=values.get(f"{PREFIX}version", "?"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(
                f"{source} has no readable rlkit metadata ({e}); export it with rlkit.export"
            ) from None
