"""Checkpoints derived from what an agent registered: its modules, optimizers and extra state.

A checkpoint directory holds ``config.json`` (agent id, hyperparameters, primitives, spaces,
env, counters, optimizer hyperparameters, extra numbers), ``model.safetensors`` (every
registered module, target networks included) and ``training_state.safetensors`` (optimizer
tensors, the RNG state, extra tensors). Written atomically; no pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from gymnasium.vector import VectorEnv
from torch import Tensor

from rlkit.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_module_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_config,
    read_tensors,
    split_prefix,
    write_checkpoint,
)
from rlkit.config import config_to_dict
from rlkit.configurable import from_json, to_json
from rlkit.envs import env_spec_of, make_vec_env
from rlkit.spaces import space_from_dict, space_to_dict, spaces_equal
from rlkit.utils.optim import set_fused
from rlkit.version import __version__

if TYPE_CHECKING:
    from .base import Agent

MODEL_FILE = "model.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"

#: hyperparameters older versions wrote that no longer exist; dropped when loading.
REMOVED_HYPERPARAMETERS = frozenset({"retain_freed_memory"})


def save_agent(agent: Agent, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``agent``'s checkpoint directory (see the module doc)."""
    spec = env_spec_of(agent.env)
    model: dict[str, Tensor] = {}
    for name, module in agent.modules().items():
        model.update({f"{name}.{k}": v.clone() for k, v in module.state_dict().items()})
    training: dict[str, Tensor] = {"rng.torch": torch.get_rng_state()}
    optim_meta: dict[str, Any] = {}
    for name, opt in agent.optimizers().items():
        tensors, meta = optimizer_to_tensors(opt, f"optim.{name}")
        training.update(tensors)
        optim_meta[name] = meta
    numbers: dict[str, Any] = {}
    for name, value in agent.extra_state().items():
        if isinstance(value, Tensor):
            training[f"state.{name}"] = value.detach().clone()
        elif isinstance(value, bool | int | float):
            numbers[name] = value
        else:
            raise TypeError(
                f"{type(agent).__name__}: extra state {name!r} must be a number or a tensor, "
                f"got {type(value).__name__}"
            )
    config = {
        "agent": type(agent).registry_id,
        # informational only: never imported (an unregistered class loads through its own load)
        "agent_class": f"{type(agent).__module__}.{type(agent).__qualname__}",
        "rlkit_version": __version__,
        "hyperparameters": config_to_dict(agent.config),
        "primitives": {k: to_json(v, k) for k, v in agent.primitives().items()},
        "spaces": {
            "observation": space_to_dict(agent.observation_space),
            "action": space_to_dict(agent.action_space),
        },
        "env": None
        if spec is None or spec.env_id is None
        else {
            "id": spec.env_id,
            "num_envs": spec.num_envs,
            "seed": spec.seed,
            "kwargs": to_json(spec.env_kwargs, "env_kwargs"),
        },
        "counters": {"global_step": agent.global_step, "num_updates": agent.num_updates},
        "optimizers": optim_meta,
        "state": numbers,
    }
    return write_checkpoint(
        path, config, {MODEL_FILE: model, TRAINING_STATE_FILE: training}, overwrite=overwrite
    )


def checkpoint_env(path: Path, config: dict[str, Any]) -> VectorEnv:
    """A new env made from the env id recorded in a checkpoint."""
    env_info = config.get("env")
    if not env_info:
        raise CheckpointError(
            f"checkpoint {path} was trained on an env given as a callable; pass env="
        )
    return make_vec_env(
        env_info["id"],
        num_envs=int(env_info["num_envs"]),
        seed=env_info.get("seed"),
        env_kwargs=from_json(env_info.get("kwargs") or {}),
    )


def check_spaces(path: Path, config: dict[str, Any], env: VectorEnv) -> None:
    """Raise unless the env's spaces are the checkpoint's."""
    for which, env_space in (
        ("observation", env.single_observation_space),
        ("action", env.single_action_space),
    ):
        saved = space_from_dict(config["spaces"][which])
        if not spaces_equal(saved, env_space):
            raise CheckpointError(
                f"checkpoint {path} was trained with {which} space {saved!r}, but the env's "
                f"is {env_space!r}"
            )


def constructor_arguments(
    path: Path, config: dict[str, Any], target: type[Agent], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Hyperparameters and primitives to rebuild the agent with (``overrides`` win)."""
    hyper = {k: v for k, v in config["hyperparameters"].items() if k not in REMOVED_HYPERPARAMETERS}
    saved_prims = dict(config.get("primitives", {}))
    if "policy" in saved_prims and any(k in overrides for k in target.policy_parts):
        del saved_prims["policy"]  # the given parts rebuild the default policy
    primitives: dict[str, Any] = {}
    for key, spec in saved_prims.items():
        if key in overrides or spec is None:
            continue
        try:
            primitives[key] = from_json(spec)
        except ValueError as e:
            raise CheckpointError(
                f"cannot rebuild the {key} of checkpoint {path}: {e}; pass {key}=... to load()"
            ) from None
    for key, value in overrides.items():
        if key in saved_prims or key in target.policy_parts:
            primitives[key] = value
        else:
            hyper[key] = value
    return {**hyper, **primitives}


def restore_state(
    agent: Agent, path: Path, config: dict[str, Any], overrides: dict[str, Any]
) -> None:
    """Load weights, optimizer state, extra state, the RNG and the counters into ``agent``."""
    name = type(agent).__name__
    model = read_tensors(path, MODEL_FILE)
    modules = agent.modules()
    unknown = {k.split(".", 1)[0] for k in model} - set(modules)
    if unknown:
        raise CheckpointError(f"checkpoint {path} has weights for unknown parts {sorted(unknown)}")
    for part, module in modules.items():
        load_module_state(module, split_prefix(model, part), f"{name}.{part}")
    training = read_tensors(path, TRAINING_STATE_FILE)
    for part, opt in agent.optimizers().items():
        meta = config.get("optimizers", {}).get(part)
        if meta is None:
            raise CheckpointError(f"checkpoint {path} has no state for optimizer {part!r}")
        optimizer_from_tensors(opt, training, meta, f"optim.{part}")
    for opt in agent.optimizers().values():  # the kernel follows this agent's backend
        set_fused(opt, agent.backend.name != "reference")
    if "lr" in overrides:  # a new learning rate beats the one saved with the optimizer
        for opt in agent.optimizers().values():
            for group in opt.param_groups:
                group["lr"] = float(overrides["lr"])
    numbers = config.get("state", {})
    tensors = split_prefix(training, "state")
    for key in agent.extra_state():
        if key in numbers:
            agent.set_extra_state(key, numbers[key])
        elif key in tensors:
            agent.set_extra_state(key, tensors[key])
    if "rng.torch" in training:
        torch.set_rng_state(training["rng.torch"])
    counters = config.get("counters", {})
    agent.global_step = int(counters.get("global_step", 0))
    agent.num_updates = int(counters.get("num_updates", 0))


def read_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint directory under ``path`` and its config."""
    directory = find_checkpoint(path)
    return directory, read_config(directory)


__all__ = [
    "MODEL_FILE",
    "REMOVED_HYPERPARAMETERS",
    "TRAINING_STATE_FILE",
    "check_spaces",
    "checkpoint_env",
    "constructor_arguments",
    "read_checkpoint",
    "restore_state",
    "save_agent",
]
