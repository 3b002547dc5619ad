"""What an exported file says about itself: spaces, agent id, input names, rlkit version."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
