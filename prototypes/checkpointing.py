"""Checkpoints derived from what an agent registered: its modules, optimizers and extra state.

A checkpoint directory holds ``config.json`` (agent id, hyperparameters, primitives, spaces,
env, counters, optimizer hyperparameters, extra numbers), ``model.safetensors`` (every
registered module, target networks included) and ``training_state.safetensors`` (optimizer
tensors, the RNG states, extra tensors). Written atomically; no pickle.

Exact resume (:func:`resume_state`, :func:`restore_resume`): every random generator (torch's,
NumPy's and Python's global ones and those registered with ``Agent.add_generator``), the
recent-episode statistics and, when the loop is inside the training env's episodes, the env's
position (see :mod:`rlkit.envs.resume`: each sub-env's last reset and actions since, replayed
on load) go into the checkpoint too, so training N steps, saving, loading and training M more
gives the same weights as training N + M steps at once.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import Tensor

from rlkit import guard
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
from rlkit.envs.resume import (
    is_recorded,
    restore_vector_env,
    rng_state,
    set_rng_state,
    vector_env_state,
)
from rlkit.plugins import plugins_in
from rlkit.spaces import space_from_dict, space_to_dict, spaces_equal
from rlkit.trust import UntrustedCodeError, reading
from rlkit.version import __version__

if TYPE_CHECKING:
    from .base import Agent

log = logging.getLogger("rlkit")

MODEL_FILE = "model.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"
#: the global generators every checkpoint holds as ``rng.<name>`` (names no agent may register).
GLOBAL_GENERATORS = ("torch", "numpy", "python")

#: hyperparameters older versions wrote that no longer exist; dropped when loading.
REMOVED_HYPERPARAMETERS = frozenset({"retain_freed_memory"})


def save_agent(agent: Agent, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``agent``'s checkpoint directory (see the module doc)."""
    guard.check_weights(agent.modules(), f"checkpoint {path}")
    spec = env_spec_of(agent.env)
    model: dict[str, Tensor] = {}
    for name, module in agent.modules().items():
        model.update({f"{name}.{k}": v.clone() for k, v in module.state_dict().items()})
    resume, training = resume_state(agent)
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
            "preprocessing": to_json(spec.preprocessing, "preprocessing"),
            # registered wrappers by name; None when one was a callable (not recordable)
            "wrappers": to_json(spec.wrapper_specs, "wrappers"),
            "self_play": to_json(spec.self_play, "self_play"),
        },
        # modules of custom envs and primitives, imported again only on request (rlkit.plugins)
        "plugins": plugins_in(
            {k: to_json(v, k) for k, v in agent.primitives().items()}, [type(agent)]
        ),
        "counters": {"global_step": agent.global_step, "num_updates": agent.num_updates},
        "optimizers": optim_meta,
        "state": numbers,
        "resume": resume,
    }
    return write_checkpoint(
        path,
        config,
        {MODEL_FILE: model, TRAINING_STATE_FILE: training},
        overwrite=overwrite,
        extra_files=agent.checkpoint_files(),
    )


def checkpoint_env(path: Path, config: dict[str, Any], trust_code: bool = False) -> VectorEnv:
    """A new env made from the env id recorded in a checkpoint; an id that would import a
    module (``"module:Env"``) is refused unless ``trust_code`` (see :mod:`rlkit.trust`)."""
    env_info = config.get("env")
    if not env_info:
        raise CheckpointError(
            f"checkpoint {path} was trained on an env given as a callable; pass env="
        )
    with reading(f"checkpoint {path}", trust_code):
        return make_vec_env(
            env_info["id"],
            num_envs=int(env_info["num_envs"]),
            seed=env_info.get("seed"),
            env_kwargs=from_json(env_info.get("kwargs") or {}),
            preprocessing=from_json(env_info.get("preprocessing", True)),
            wrappers=from_json(env_info.get("wrappers") or []),
            self_play=from_json(env_info.get("self_play")),
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
    path: Path,
    config: dict[str, Any],
    target: type[Agent],
    overrides: dict[str, Any],
    trust_code: bool = False,
) -> dict[str, Any]:
    """Hyperparameters and primitives to rebuild the agent with (``overrides`` win). Primitives
    are rebuilt from registered ids only; import paths in them (a HER reward function) need
    ``trust_code`` (see :mod:`rlkit.trust`)."""
    hyper = {k: v for k, v in config["hyperparameters"].items() if k not in REMOVED_HYPERPARAMETERS}
    saved_prims = dict(config.get("primitives", {}))
    if "policy" in saved_prims and any(k in overrides for k in target.policy_parts):
        del saved_prims["policy"]  # the given parts rebuild the default policy
    primitives: dict[str, Any] = {}
    for key, spec in saved_prims.items():
        if key in overrides or spec is None:
            continue
        try:
            with reading(f"checkpoint {path}", trust_code):
                primitives[key] = from_json(spec)
        except UntrustedCodeError:
            raise
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
        # the kernel follows this agent's backend: keep the implementation its constructor
        # chose (switching one the saved run did not use would change the numbers)
        chosen: list[dict[str, Any]] = [
            {k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups
        ]
        optimizer_from_tensors(opt, training, meta, f"optim.{part}")
        for group, kept in zip(opt.param_groups, chosen, strict=True):
            group.update(kept)
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
    counters = config.get("counters", {})
    agent.global_step = int(counters.get("global_step", 0))
    agent.num_updates = int(counters.get("num_updates", 0))
    agent.restore_checkpoint_files(path)
    restore_resume(agent, path, config, training)


def resume_state(agent: Agent) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """What exact resume needs besides weights, optimizers and registered state, as the JSON
    of ``config.json``'s ``resume`` entry and tensors for ``training_state.safetensors``:

    - ``rng.torch``, ``rng.numpy``, ``rng.python``: the global generators' states (NumPy's
      and Python's position and Gaussian cache in ``resume.rng``);
    - ``rng.<name>`` for each torch generator of ``agent.generators()``; NumPy ones in
      ``resume.rng.<name>``;
    - ``episodes.*``: the recent-episode statistics and the unfinished episodes' sums;
    - ``resume.position``: whether the loop is inside the env's episodes, and then
      ``resume.env`` and ``env.*``: the env's position (:func:`rlkit.envs.resume.vector_env_state`),
      or null with ``resume.env_problem`` saying why it could not be taken.

    Taking it changes nothing, so a checkpoint written during training does not disturb the
    run."""
    tensors: dict[str, Tensor] = {"rng.torch": torch.get_rng_state()}
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(key, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    rngs: dict[str, Any] = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "gauss": gauss},
        "python": {"version": version, "gauss_next": gauss_next},
    }
    for name, generator in agent.generators().items():
        if isinstance(generator, torch.Generator):
            tensors[f"rng.{name}"] = generator.get_state()
        else:
            rngs[name] = rng_state(generator)
    for name, array in agent.episodes.state_dict().items():
        tensors[f"episodes.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
    info: dict[str, Any] = {"rng": rngs, "position": bool(agent.has_env_position())}
    if info["position"]:
        info["env"] = None
        if not is_recorded(agent.env):
            info["env_problem"] = (
                "the training env has no action recorder (only gymnasium envs made by "
                "rlkit.envs.make_vec_env can be replayed)"
            )
        else:
            try:
                env_state, arrays = vector_env_state(agent.env)
            except Exception as e:  # a closed or broken env: the checkpoint is still written
                info["env_problem"] = f"its state could not be read ({type(e).__name__}: {e})"
            else:
                info["env"] = env_state
                for name, array in arrays.items():
                    tensors[f"env.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
    return info, tensors


def restore_resume(
    agent: Agent, path: Path, config: dict[str, Any], training: dict[str, Tensor]
) -> None:
    """Restore what :func:`resume_state` saved: the agent's generators, the env's position
    (replayed, see :mod:`rlkit.envs.resume`), the episode statistics, and the global
    generators last (a replayed env may draw from them). When the env cannot be put back, one
    warning says why and the loop starts from a reset (:meth:`Agent.continue_from`)."""
    info = config.get("resume")
    rngs = info.get("rng", {}) if isinstance(info, dict) else {}
    for name, generator in agent.generators().items():
        if isinstance(generator, torch.Generator):
            # checkpoints before exact resume kept the agent's generator as extra state
            state = training.get(f"rng.{name}", training.get(f"state.{name}"))
            if state is not None:
                generator.set_state(state)
        elif name in rngs:
            set_rng_state(generator, rngs[name])
    if not isinstance(info, dict):  # written before exact resume: the env starts anew
        if "rng.torch" in training:
            torch.set_rng_state(training["rng.torch"])
        return
    restored = False
    if info.get("position"):
        obs, problem = None, info.get("env_problem") or "the checkpoint has no env state"
        saved_env = (config.get("env") or {}).get("id")
        spec = env_spec_of(agent.env)
        if info.get("env") is not None:
            if saved_env and spec is not None and spec.env_id and spec.env_id != saved_env:
                problem = f"the env is {spec.env_id!r}, the checkpoint's was {saved_env!r}"
            else:
                arrays = {k: v.numpy() for k, v in split_prefix(training, "env").items()}
                obs, problem = restore_vector_env(agent.env, info["env"], arrays)
        if obs is None:
            log.warning(
                "checkpoint %s: the training env cannot be put back where it was (%s); the "
                "resumed run starts new episodes, so it is not identical to an uninterrupted one",
                path,
                problem,
            )
        restored = obs is not None
        agent.continue_from(obs)
    episodes = {k: v.numpy() for k, v in split_prefix(training, "episodes").items()}
    if episodes:
        agent.episodes.load_state_dict(episodes, running=restored)
    if "rng.numpy" in training and "numpy" in rngs:
        n = rngs["numpy"]
        key = training["rng.numpy"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], key, int(n["pos"]), int(n["has_gauss"]), n["gauss"]))
    if "rng.python" in training and "python" in rngs:
        p = rngs["python"]
        internal = tuple(int(x) for x in training["rng.python"].tolist())
        random.setstate((int(p["version"]), internal, p["gauss_next"]))
    if "rng.torch" in training:
        torch.set_rng_state(training["rng.torch"])


def read_checkpoint(path: str | Path, trust_code: bool = False) -> tuple[Path, dict[str, Any]]:
    """The checkpoint directory under ``path`` and its config (``trust_code``: import the
    plugin modules it names, see :func:`rlkit.checkpoint.read_config`)."""
    directory = find_checkpoint(path)
    return directory, read_config(directory, trust_code)


__all__ = [
    "GLOBAL_GENERATORS",
    "MODEL_FILE",
    "REMOVED_HYPERPARAMETERS",
    "TRAINING_STATE_FILE",
    "check_spaces",
    "checkpoint_env",
    "constructor_arguments",
    "read_checkpoint",
    "restore_resume",
    "restore_state",
    "resume_state",
    "save_agent",
]
