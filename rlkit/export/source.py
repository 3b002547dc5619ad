"""Accept an agent or a checkpoint directory wherever an export takes one."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
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


def policy_name(policy: Any) -> str:
    """A policy's registry id, or its class name when it has none."""
    return getattr(type(policy), "registry_id", None) or type(policy).__name__


def cpu_acting_path(agent: Any) -> tuple[ActingPath, ExportMetadata]:
    """A CPU copy of the agent's acting path (the agent is untouched) and its metadata."""
    acting: ActingPath = copy.deepcopy(agent.acting_path()).cpu().eval()
    policy = acting.policy
    metadata = ExportMetadata(
        observation_space=acting.observation_space,
        action_space=acting.action_space,
        input_names=acting.observation_names,
        agent=getattr(type(agent), "registry_id", None),
        state=acting.state_specs,
        policy=policy_name(policy) if acting.recurrent else None,
    )
    return acting, metadata


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Silence the tracer's warnings that say nothing about the user's model: the RNN modules'
    ``_flat_weights`` being reassigned during export, and PyTorch's own ``_check_is_size``
    deprecation (both seen when tracing recurrent policies)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*_flat_weights.*assigned during export")
        warnings.filterwarnings("ignore", message=r"_check_is_size will be removed")
        yield
