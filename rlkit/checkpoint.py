"""Checkpoint directories: ``config.json`` + safetensors files, written atomically, no pickle."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from rlkit.registry import REGISTRIES

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match what it is loaded into."""


def write_checkpoint(
    path: str | Path,
    config: Mapping[str, Any],
    tensor_files: Mapping[str, Mapping[str, Tensor]],
    overwrite: bool = False,
) -> Path:
    """Write ``config.json`` and one safetensors file per entry of ``tensor_files``.

    Everything goes to a temporary sibling directory first, which then replaces ``path`` by
    rename, so an interrupted save never leaves a half-written checkpoint or loses the old one.
    An existing ``path`` is only replaced when ``overwrite`` is true.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"checkpoint directory {target} already exists; pass overwrite=True to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; checkpoints follow the umask
        with (tmp / CONFIG_FILE).open("w") as f:
            json.dump({"format": FORMAT_VERSION, **config}, f, indent=2, sort_keys=False)
            f.flush()
            os.fsync(f.fileno())
        for name, tensors in tensor_files.items():
            contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            save_file(contiguous, str(tmp / name))
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~umask)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the ``final`` (else ``checkpoint``) one of a run dir."""
    directory = Path(path)
    for candidate in (directory, directory / "final", directory / "checkpoint"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    if not directory.exists():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    raise CheckpointError(
        f"{directory} holds no checkpoint ({CONFIG_FILE} not found there, nor in its final/ or "
        "checkpoint/ subdirectories)"
    )


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of a checkpoint directory."""
    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    file = directory / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {CONFIG_FILE}")
    try:
        with file.open() as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint config {file} is corrupt: {e}") from None
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint config {file} has format {found!r}, expected {FORMAT_VERSION}"
        )
    return config


def read_tensors(path: str | Path, name: str) -> dict[str, Tensor]:
    """Load one safetensors file of a checkpoint, with a clear error if missing or corrupt."""
    file = Path(path) / name
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path} is missing {name}")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint file {file} is corrupt or truncated: {e}") from None


def split_prefix(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries ``prefix.<rest>`` as ``{rest: tensor}``."""
    p = prefix + "."
    return {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}


def load_module_state(module: torch.nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """``load_state_dict`` with a message naming the missing, unexpected and mismatched keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(own[k].shape) != tuple(state[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unexpected:
            parts.append(f"unexpected {unexpected}")
        if wrong:
            parts.append(f"shape mismatch {wrong}")
        raise CheckpointError(f"{what} does not match the checkpoint: " + "; ".join(parts))
    module.load_state_dict(dict(state))


def optimizer_to_tensors(
    optimizer: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (safetensors) and JSON (hyperparameters)."""
    state = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, Tensor],
    meta: Mapping[str, Any],
    prefix: str,
) -> None:
    """Inverse of :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in split_prefix(tensors, prefix).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"optimizer state {prefix!r} does not match: {e}") from None


def agent_class(agent_id: Any, where: str) -> Any:
    """The agent class registered as ``agent_id`` (the registry of agent classes is filled by
    the modules that define them: core never imports them). A clear error when it is not
    registered in this process."""
    registry = REGISTRIES.get("agent")
    if agent_id is None:
        raise CheckpointError(
            f"{where} was saved by an unregistered agent class; load it with that class's "
            "load(), or register the class with @rlkit.prototypes.AGENTS.register('<id>')"
        )
    if registry is None or str(agent_id) not in registry:
        known = ", ".join(registry) if registry is not None else "(none)"
        raise CheckpointError(
            f"{where} holds a {agent_id!r} agent, which is not registered in this process; "
            "import the module that registers it first (the reference agents: "
            f"`import rlkit.agents`). Registered: {known or '(none)'}"
        )
    return registry.get(str(agent_id))


def load_registered_agent(path: str | Path, **kwargs: Any) -> Any:
    """Load the agent of a checkpoint (or run) directory through its registered class."""
    directory = find_checkpoint(path)
    cls = agent_class(read_config(directory).get("agent"), f"checkpoint {directory}")
    return cls.load(directory, **kwargs)
