"""Run settings shared by every entry point that trains from names (``rlkit train``,
``rlkit tune``): which keys are run settings, which are primitives, how a built-in preset, a
config file and explicit values merge, and how the env is built from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium.vector import VectorEnv

from rlkit.config import field_names
from rlkit.config.hyperparameters import UnknownHyperparameterError
from rlkit.config.presets import load_config_file, load_preset

from .base import AGENTS

#: run settings (not agent hyperparameters) accepted by ``rlkit train``.
RUN_KEYS = (
    "env",
    "num_envs",
    "total_steps",
    "seed",
    "out",
    "asynchronous",
    "env_kwargs",
    "wrappers",
    "preprocessing",
    "self_play",
    "checkpoint_every",
    "eval_episodes",
)
#: constructor arguments that take a primitive (object, registered id or spec dict).
PRIMITIVE_KEYS = ("policy", "encoder", "distribution", "augmentation", "intrinsic_reward")


def primitive_keys(agent_cls: Any) -> tuple[str, ...]:
    """The primitive arguments of ``agent_cls``: the shared ones and its own
    (:attr:`~rlkit.prototypes.Agent.primitive_arguments`)."""
    own = tuple(getattr(agent_cls, "primitive_arguments", ()))
    return PRIMITIVE_KEYS + tuple(k for k in own if k not in PRIMITIVE_KEYS)


def resolve_train_settings(
    algo: str,
    explicit: Mapping[str, Any],
    config_file: str | None,
    use_preset: bool = True,
    command: str = "rlkit train",
) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Merge built-in preset < config file < explicit values; split into the agent class, run
    settings, hyperparameters and primitives; reject unknown names with the list of valid
    ones. ``use_preset=False`` (resuming) leaves out the preset so a checkpoint's own settings
    stand."""
    agent_cls: Any = AGENTS.get(algo)
    from_file = load_config_file(config_file) if config_file else {}
    env_id = explicit.get("env", from_file.get("env"))
    preset = load_preset(algo, env_id if isinstance(env_id, str) else None) if use_preset else {}
    merged = {**preset, **from_file, **explicit}
    valid_hyper = field_names(agent_cls.Config)
    prim_keys = primitive_keys(agent_cls)
    unknown = sorted(set(merged) - set(valid_hyper) - set(RUN_KEYS) - set(prim_keys))
    if unknown:
        raise UnknownHyperparameterError(
            f"{command} {algo}: unknown option(s) {', '.join(unknown)}; valid hyperparameters: "
            f"{', '.join(valid_hyper)}; run settings: {', '.join(RUN_KEYS)}; primitives: "
            f"{', '.join(prim_keys)}"
        )
    run = {k: merged[k] for k in RUN_KEYS if k in merged}
    hyper = {k: merged[k] for k in valid_hyper if k in merged}
    prims = {k: merged[k] for k in prim_keys if k in merged}
    if "seed" in run:
        hyper["seed"] = run["seed"]
    return agent_cls, run, hyper, prims


def make_run_env(run: Mapping[str, Any], seed: int | None = None) -> VectorEnv:
    """The training env of a run: ``env``, ``num_envs`` (default 8), ``asynchronous``,
    ``env_kwargs``, ``wrappers`` (registered wrapper ids or specs), ``preprocessing`` (the
    env family's options, or false) and ``self_play`` (a turn-based PettingZoo game against
    the learner's snapshots: true or the league's options) from the run settings; ``seed``
    (default the run's)."""
    from rlkit.envs import make_vec_env

    if "env" not in run:
        raise ValueError("--env ENV_ID is required (or `env:` in the config file)")
    return make_vec_env(
        str(run["env"]),
        num_envs=int(run.get("num_envs", 8)),
        seed=run.get("seed") if seed is None else seed,
        asynchronous=bool(run.get("asynchronous", False)),
        env_kwargs=run.get("env_kwargs"),
        wrappers=list(run.get("wrappers") or []),
        preprocessing=run.get("preprocessing", True),
        self_play=run.get("self_play"),
    )


__all__ = [
    "PRIMITIVE_KEYS",
    "RUN_KEYS",
    "make_run_env",
    "primitive_keys",
    "resolve_train_settings",
]
