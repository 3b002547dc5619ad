"""Accept an agent or a checkpoint directory wherever an export takes one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from rlkit.checkpoint import load_registered_agent
from rlkit.export.acting import ActingPath
from rlkit.export.metadata import ExportMetadata


def resolve_agent(agent_or_checkpoint: Any) -> Any:
    """The agent itself, or the agent loaded (on CPU) from a checkpoint or run directory
    (through the registry of agent classes: import the module that defines the agent first,
    ``rlkit.agents`` for the reference ones)."""
    if isinstance(agent_or_checkpoint, str | Path):
        return load_registered_agent(agent_or_checkpoint, device="cpu")
    if not hasattr(agent_or_checkpoint, "acting_path"):
        raise TypeError(
            "expected an rlkit agent or a checkpoint directory, got "
            f"{type(agent_or_checkpoint).__name__}"
        )
    return agent_or_checkpoint


def cpu_acting_path(agent: Any) -> tuple[ActingPath, ExportMetadata]:
    """A CPU copy of the agent's acting path (the agent is untouched) and its metadata."""
    acting: ActingPath = copy.deepcopy(agent.acting_path()).cpu().eval()
    metadata = ExportMetadata(
        observation_space=acting.observation_space,
        action_space=acting.action_space,
        input_names=acting.input_names,
        agent=getattr(type(agent), "registry_id", None),
    )
    return acting, metadata
