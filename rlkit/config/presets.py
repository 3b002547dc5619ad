"""Per-env default settings shipped with rlkit (``rlkit/presets/<agent>.yaml``)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def load_preset(agent_id: str, env_id: str | None) -> dict[str, Any]:
    """Settings for ``agent_id`` on ``env_id``: the env's entry, else the entry of its env
    family (``atari``, ``minigrid``, ``dmc``, ... see :mod:`rlkit.envs.families`), else
    ``default``, else {}."""
    try:
        text = resources.files("rlkit").joinpath("presets").joinpath(f"{agent_id}.yaml").read_text()
    except FileNotFoundError:
        return {}
    table = yaml.safe_load(text) or {}
    entry = table.get(env_id) if env_id is not None else None
    if entry is None and env_id is not None:
        entry = table.get(f"family:{_family_id(env_id)}")
    return dict(entry if entry is not None else table.get("default", {}))


def _family_id(env_id: str) -> str | None:
    from rlkit.envs.families import family_for

    family = family_for(env_id)
    return family.registry_id if family is not None else None


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML run config: a flat mapping of settings, hyperparameters and primitives."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
        raise ValueError(f"config file {path} cannot be read: {reason}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"config file {path} is not valid YAML: {yaml_problem(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config file {path} must hold a mapping of keys to values (key: value lines), got "
            f"a {type(data).__name__}"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML parse error in one line: what is wrong and where (line and column, from 1)."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())
