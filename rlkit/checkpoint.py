"""Checkpoint directories: ``config.json`` + safetensors files, written atomically, no pickle."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from rlkit.config import make_config
from rlkit.configurable import registry_of
from rlkit.plugins import ensure_plugins
from rlkit.registry import REGISTRIES, arguments_of
from rlkit.spaces import space_from_dict
from rlkit.utils.files import exchange_paths, fsync_dir, fsync_tree
from rlkit.utils.processes import pid_alive

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match what it is loaded into."""


#: writes one extra file of a checkpoint (e.g. the replay storage) at the path it is given.
FileWriter = Callable[[Path], Any]


def write_checkpoint(
    path: str | Path,
    config: Mapping[str, Any],
    tensor_files: Mapping[str, Mapping[str, Tensor]],
    overwrite: bool = False,
    extra_files: Mapping[str, FileWriter] | None = None,
) -> Path:
    """Write ``config.json``, one safetensors file per entry of ``tensor_files`` and each of
    ``extra_files`` (``{name: writer}``, e.g. the replay storage) into a new checkpoint.

    Everything is written and flushed to disk inside a hidden sibling directory, which then
    takes ``path``'s place in one step: on Linux the two directories are swapped atomically
    (``renameat2(RENAME_EXCHANGE)``), so at every instant ``path`` is one complete checkpoint,
    the old or the new; elsewhere the old one is renamed aside first and restored by
    :func:`find_checkpoint` if the process dies in between. Leftovers of saves killed earlier
    (hidden ``.NAME.tmp-*`` / ``.NAME.old-*`` directories of dead processes) are removed.
    An existing ``path`` is only replaced when ``overwrite`` is true.
    """
    target = Path(path)
    recover_checkpoint(target)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"checkpoint directory {target} already exists; pass overwrite=True to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; checkpoints follow the umask
        for name, tensors in tensor_files.items():
            contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            save_file(contiguous, str(tmp / name))
        for name, writer in (extra_files or {}).items():
            writer(tmp / name)
        # config.json last: a directory holding it is complete
        with (tmp / CONFIG_FILE).open("w") as f:
            json.dump({"format": FORMAT_VERSION, **config}, f, indent=2, sort_keys=False)
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~umask)
        fsync_tree(tmp)
        if not target.exists():
            tmp.rename(target)
        elif exchange_paths(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old checkpoint
        else:
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{tmp.name[-8:]}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _writer_pid(name: str) -> int | None:
    """The pid embedded in a hidden ``.NAME.tmp-PID-...`` / ``.NAME.old-PID-...`` name."""
    tail = name.rsplit(".tmp-", 1)[-1] if ".tmp-" in name else name.rsplit(".old-", 1)[-1]
    head = tail.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def clean_stale(target: Path) -> None:
    """Remove hidden temporaries of saves of ``target`` whose writing process has died (a
    complete old copy is only removed while ``target`` itself is complete)."""
    if not target.parent.is_dir():
        return
    complete = (target / CONFIG_FILE).is_file()
    for sibling in target.parent.glob(f".{target.name}.*"):
        if not sibling.is_dir():
            continue
        name = sibling.name
        if ".tmp-" not in name and ".old-" not in name:
            continue
        pid = _writer_pid(name)
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            continue  # another live process is saving
        if ".old-" in name and not complete:
            continue  # the only complete copy: recover_checkpoint puts it back
        shutil.rmtree(sibling, ignore_errors=True)


def recover_checkpoint(target: Path) -> None:
    """Where renames cannot swap directories, a save killed between its two renames leaves
    the previous checkpoint as a hidden ``.NAME.old-*`` sibling and ``target`` missing: put it
    back."""
    if target.exists() or not target.parent.is_dir():
        return
    olds = sorted(
        (p for p in target.parent.glob(f".{target.name}.old-*") if (p / CONFIG_FILE).is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    if olds:
        with contextlib.suppress(OSError):  # another process may have recovered it first
            olds[-1].rename(target)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the ``final`` (else ``checkpoint``) one of a run dir."""
    directory = Path(path)
    for candidate in (directory, directory / "final", directory / "checkpoint"):
        recover_checkpoint(candidate)
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    if not directory.exists():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    raise CheckpointError(
        f"{directory} holds no checkpoint ({CONFIG_FILE} not found there, nor in its final/ or "
        "checkpoint/ subdirectories)"
    )


def read_config(path: str | Path, trust_code: bool = False) -> dict[str, Any]:
    """Read and validate ``config.json`` of a checkpoint directory. The plugin modules it was
    trained with (:mod:`rlkit.plugins`) must be imported first, or are imported with
    ``trust_code``: they register the ids the config names."""
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
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint config {file} cannot be read: {e}") from None
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint config {file} has format {found!r}, expected {FORMAT_VERSION}"
        )
    if not _names_resolve(config):  # (classes defined in a notebook need no import)
        ensure_plugins(config.get("plugins"), f"checkpoint {directory}", trust_code)
    check_config_structure(config, f"checkpoint config {file}")
    return config


def _names_resolve(config: Any) -> bool:
    """Whether every registered id the config names (agent, primitives, env) is known in this
    process already, so no plugin module needs importing."""
    if not isinstance(config, dict):
        return False
    agents = REGISTRIES.get("agent")
    agent = config.get("agent")
    if agent is not None and (agents is None or agents.lookup(str(agent)) is None):
        return False
    env = config.get("env")
    if isinstance(env, dict) and isinstance(env.get("id"), str):
        import gymnasium

        if ":" not in env["id"] and env["id"] not in gymnasium.registry:
            return False

    def known(value: Any) -> bool:
        if isinstance(value, list):
            return all(known(v) for v in value)
        if not isinstance(value, dict):
            return True
        kind, ident = value.get("__primitive__"), value.get("id")
        if isinstance(kind, str) and isinstance(ident, str):
            try:
                if registry_of(kind).lookup(ident) is None:
                    return False
            except ValueError:
                return False
        return all(known(v) for v in value.values())

    return known(config.get("primitives", {}))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_optional_mapping(value: Any) -> bool:
    return value is None or isinstance(value, dict)


#: the entries of ``config.json`` loaders read: (key, required, check, what it must be).
_ENTRIES: tuple[tuple[str, bool, Callable[[Any], bool], str], ...] = (
    ("agent", False, lambda v: v is None or isinstance(v, str), "an agent id (a string) or null"),
    ("hyperparameters", True, lambda v: isinstance(v, dict), "a mapping of names to values"),
    ("primitives", False, lambda v: isinstance(v, dict), "a mapping of names to specs"),
    ("spaces", True, lambda v: isinstance(v, dict), "a mapping with observation and action"),
    ("env", False, _is_optional_mapping, "a mapping (id, num_envs, seed, kwargs) or null"),
    ("counters", False, lambda v: isinstance(v, dict), "a mapping of counter names to counts"),
    ("optimizers", False, lambda v: isinstance(v, dict), "a mapping of optimizer states"),
    ("state", False, lambda v: isinstance(v, dict), "a mapping of names to numbers"),
    (
        "plugins",
        False,
        lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
        "a list of module names",
    ),
)


def check_config_structure(config: Mapping[str, Any], where: str) -> None:
    """Raise a :class:`CheckpointError` naming ``where`` and the entry when a (hand-edited)
    ``config.json`` lacks an entry the loaders read or holds the wrong kind of value there;
    the hyperparameters of a registered agent are checked against its config's rules."""

    def bad(key: str, what: str, value: Any) -> CheckpointError:
        return CheckpointError(f"{where}: {key} must be {what}, got {value!r}")

    for key, required, check, what in _ENTRIES:
        if key not in config:
            if required:
                raise CheckpointError(f"{where} has no {key!r} entry")
            continue
        if not check(config[key]):
            raise bad(key, what, config[key])
    for name, spec in config.get("primitives", {}).items():
        if not _is_optional_mapping(spec):
            raise bad(f"primitives.{name}", "a primitive spec (a mapping) or null", spec)
        _check_specs(spec, f"primitives.{name}", where)
    for which in ("observation", "action"):
        description = config["spaces"].get(which)
        if not isinstance(description, dict):
            raise bad(f"spaces.{which}", "a space description (a mapping)", description)
        try:
            space_from_dict(description)
        except KeyError as e:
            raise CheckpointError(
                f"{where}: spaces.{which} is not a space description: it has no {e.args[0]!r} entry"
            ) from None
        except (TypeError, ValueError) as e:
            raise CheckpointError(
                f"{where}: spaces.{which} is not a space description: {e}"
            ) from None
    env = config.get("env")
    if env is not None:
        if not isinstance(env.get("id"), str) or not env["id"]:
            raise bad("env.id", "an env id (a string)", env.get("id"))
        if not (_is_count(env.get("num_envs")) and env["num_envs"] >= 1):
            raise bad("env.num_envs", "an integer >= 1", env.get("num_envs"))
        seed = env.get("seed")
        if seed is not None and not _is_count(seed):
            raise bad("env.seed", "an integer >= 0 or null", seed)
        if not _is_optional_mapping(env.get("kwargs")):
            raise bad("env.kwargs", "a mapping or null", env.get("kwargs"))
    for name, value in config.get("counters", {}).items():
        if not _is_count(value):
            raise bad(f"counters.{name}", "an integer >= 0", value)
    for name, meta in config.get("optimizers", {}).items():
        groups = meta.get("param_groups") if isinstance(meta, dict) else None
        if not (isinstance(groups, list) and all(isinstance(g, dict) for g in groups)):
            raise bad(f"optimizers.{name}", "a mapping with a param_groups list", meta)
    for name, value in config.get("state", {}).items():
        if isinstance(value, str) or not isinstance(value, int | float):
            raise bad(f"state.{name}", "a number", value)
    _check_hyperparameters(config, where)


def _check_specs(value: Any, key: str, where: str) -> None:
    """Every registered primitive spec inside ``value`` names a registered id and only
    arguments its class takes (unregistered classes are reported when they are rebuilt)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_specs(item, f"{key}[{i}]", where)
        return
    if not isinstance(value, dict):
        return
    kind, ident = value.get("__primitive__"), value.get("id")
    if isinstance(kind, str) and isinstance(ident, str):
        try:
            cls = registry_of(kind).get(ident)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{where}: {key}: {e}") from None
        accepted = arguments_of(cls)
        given = [k for k in value if k not in ("__primitive__", "id", "class")]
        unknown = [k for k in given if accepted is not None and k not in accepted]
        if unknown and accepted is not None:
            raise CheckpointError(
                f"{where}: {key}: {kind} {ident!r} ({cls.__qualname__}) has no argument(s) "
                f"{', '.join(unknown)}; its arguments: {', '.join(accepted)}"
            )
    for name, item in value.items():
        if name not in ("__primitive__", "id", "class"):
            _check_specs(item, f"{key}.{name}", where)


def _check_hyperparameters(config: Mapping[str, Any], where: str) -> None:
    """The recorded hyperparameters against the rules of the agent's config, when that agent
    is registered in this process (names it does not have are left to the agent)."""
    registry = REGISTRIES.get("agent")
    agent_id = config.get("agent")
    if registry is None or agent_id is None or agent_id not in registry:
        return
    config_cls = getattr(registry.get(agent_id), "Config", None)
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        return
    known = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in config["hyperparameters"].items() if k in known}
    try:
        make_config(config_cls, None, values, "hyperparameters")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: {e}") from None


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


def variable_state_keys(module: torch.nn.Module) -> set[str]:
    """The ``state_dict`` keys of ``module`` that its sub-modules' ``variable_state_keys()``
    hooks name (see :func:`load_module_state`)."""
    keys: set[str] = set()
    for name, sub in module.named_modules():
        hook = getattr(sub, "variable_state_keys", None)
        if callable(hook):
            keys.update(f"{name}.{k}" if name else k for k in hook())
    return keys


def load_module_state(module: torch.nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """``load_state_dict`` with a message naming the missing, unexpected and mismatched keys.

    Keys a sub-module names in a ``variable_state_keys()`` method (run-time state whose shape
    follows the run, e.g. an episodic reward's per-env memory) may have another shape, or be
    missing (checkpoints written before it was saved); the module's own loading handles them.
    """
    own = module.state_dict()
    variable = variable_state_keys(module)
    missing = sorted(set(own) - set(state) - variable)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state) - variable
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


def load_registered_agent(path: str | Path, trust_code: bool = False, **kwargs: Any) -> Any:
    """Load the agent of a checkpoint (or run) directory through its registered class.
    ``trust_code`` allows names in it that import code (see :mod:`rlkit.trust`)."""
    directory = find_checkpoint(path)
    config = read_config(directory, trust_code)
    cls = agent_class(config.get("agent"), f"checkpoint {directory}")
    return cls.load(directory, trust_code=trust_code, **kwargs)
