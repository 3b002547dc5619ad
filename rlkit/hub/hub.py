"""Push an agent to the Hugging Face Hub and load one back (from the Hub, its cache or a dir).

A Hub repo holds exactly a checkpoint directory (``config.json`` + safetensors, no pickle) plus
a ``README.md`` model card. Loading one imports nothing it names unless ``trust_code=True`` (see
:mod:`rlkit.trust`). ``huggingface_hub`` is imported only when a function needs it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gymnasium.vector import VectorEnv

from rlkit.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    agent_class,
    find_checkpoint,
    read_config,
)
from rlkit.hub.card import model_card, require_hub
from rlkit.registry import REGISTRIES
from rlkit.types import AgentLike

if TYPE_CHECKING:
    from huggingface_hub import HfApi


#: what :func:`from_pretrained` downloads from a repo (the checkpoint and the card).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "README.md"]
#: the only kinds of file a shared agent may contain: nothing that unpickles on load.
SAFE_SUFFIXES = (".json", ".safetensors", ".md")
README = "README.md"


def build_hub_files(
    agent: AgentLike,
    directory: str | Path,
    *,
    repo_id: str | None = None,
    eval_results: Mapping[str, float] | None = None,
    eval_episodes: int = 10,
    reproduce_command: str | None = None,
    overwrite: bool = False,
) -> dict[str, bytes | Path]:
    """Everything a Hub repo of ``agent`` holds, as ``{path in repo: content}``.

    Saves the checkpoint into ``directory`` (``config.json`` and the safetensors files, which
    are returned as paths there), evaluates the agent with ``agent.evaluate(eval_episodes)``
    unless ``eval_results`` is given (``eval_episodes=0`` skips it) and returns the
    ``README.md`` model card as bytes. ``repo_id`` only appears in the card's usage example."""
    if eval_episodes < 0:
        raise ValueError(f"eval_episodes must be >= 0, got {eval_episodes}")
    checkpoint = agent.save(directory, overwrite=overwrite)
    if eval_results is None and eval_episodes > 0:
        eval_results = agent.evaluate(episodes=eval_episodes)
    files: dict[str, bytes | Path] = {
        p.name: p for p in sorted(checkpoint.iterdir()) if p.is_file()
    }
    unsafe = sorted(name for name in files if not name.endswith(SAFE_SUFFIXES))
    if unsafe:
        raise CheckpointError(f"refusing to share {unsafe}: only JSON and safetensors files")
    card = model_card(
        agent,
        eval_results,
        repo_id=repo_id,
        reproduce_command=reproduce_command,
        files=(*files, README),
    )
    files[README] = card.encode("utf-8")
    return files


def push_to_hub(
    agent: AgentLike,
    repo_id: str,
    *,
    eval_episodes: int = 10,
    eval_results: Mapping[str, float] | None = None,
    commit_message: str | None = None,
    private: bool = False,
    token: str | None = None,
    reproduce_command: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Upload ``agent`` to the Hub repo ``repo_id`` (created if missing) in one commit:
    checkpoint, model card with the evaluation result and the reproducing command. Returns the
    commit URL. ``api`` defaults to ``HfApi(token=token)``. See :func:`build_hub_files`."""
    hub = require_hub()
    if api is None:
        api = hub.HfApi(token=token)
    assert api is not None
    if commit_message is None:
        commit_message = f"Upload {type(agent).__name__} agent (rlkit)"
    with tempfile.TemporaryDirectory(prefix="rlkit-hub-") as tmp:
        files = build_hub_files(
            agent,
            Path(tmp) / "checkpoint",
            repo_id=repo_id,
            eval_results=eval_results,
            eval_episodes=eval_episodes,
            reproduce_command=reproduce_command,
        )
        operations = [
            hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=content)
            for name, content in files.items()
        ]
        api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private, token=token)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            repo_type="model",
            token=token,
        )
    return str(getattr(info, "commit_url", info))


def from_pretrained(
    repo_id_or_dir: str | Path,
    env: VectorEnv | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | Path | None = None,
    cls: Any = None,
    trust_code: bool = False,
    **overrides: Any,
) -> AgentLike:
    """Load an agent from a Hub repo id (``"user/name"``) or a local directory (a checkpoint,
    a run directory or a downloaded repo).

    A repo is fetched with ``huggingface_hub.snapshot_download`` (JSON, safetensors and the
    card only) into its cache (``cache_dir``, default ``HF_HUB_CACHE``); with
    ``HF_HUB_OFFLINE=1`` it is read from that cache without network access. ``cls`` (an agent
    class) checks the recorded agent id; without it the id picks the class. ``env`` and
    ``overrides`` go to :meth:`Agent.load`.

    Only JSON and safetensors are downloaded and nothing is unpickled; the repo may name
    registered agents, primitives, goal functions and gymnasium env ids only. An env id
    ``"module:Env"`` or a HER function given as an import path is refused unless
    ``trust_code=True`` (importing runs that module's code; see :mod:`rlkit.trust`)."""
    directory = _local_directory(repo_id_or_dir)
    if directory is None:
        repo_id = str(repo_id_or_dir)
        where = f"Hub repo {repo_id!r}" + (f" (revision {revision!r})" if revision else "")
        directory = _download(repo_id, revision, token, cache_dir, where)
        try:
            checkpoint = find_checkpoint(directory)
        except CheckpointError:
            found = sorted(p.name for p in directory.iterdir())
            raise CheckpointError(
                f"{where} holds no rlkit checkpoint: no {CONFIG_FILE} at its root (downloaded "
                f"{found or 'nothing'})"
            ) from None
    else:
        checkpoint = find_checkpoint(directory)
        where = str(checkpoint)
    config = read_config(checkpoint, trust_code)
    agent_id = config.get("agent")
    explicit = cls is not None and not inspect.isabstract(cls)
    if not isinstance(agent_id, str) and not (agent_id is None and explicit):
        saved_by = config.get("agent_class")
        raise CheckpointError(
            f"{where} names no registered agent ({CONFIG_FILE}: agent {agent_id!r}"
            + (f", saved by the unregistered class {saved_by}" if saved_by else "")
            + "); load it with that class's from_pretrained"
        )
    if (
        agent_id is not None
        and cls is not None
        and cls.registry_id is not None
        and agent_id != cls.registry_id
    ):
        raise CheckpointError(
            f"{where} holds a {agent_id!r} agent, not {cls.registry_id!r}; load it with "
            f"{_class_name(agent_id)}.from_pretrained or rlkit.hub.from_pretrained"
        )
    if cls is None or (cls.registry_id is None and inspect.isabstract(cls)):
        cls = agent_class(agent_id, where)
    agent: AgentLike = cls.load(checkpoint, env=env, trust_code=trust_code, **overrides)
    return agent


def _local_directory(source: str | Path) -> Path | None:
    """The directory ``source`` names, None for a Hub repo id, or a CheckpointError."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    looks_local = (
        isinstance(source, Path)
        or path.exists()
        or text.startswith((".", "/", "~", "\\"))
        or text.count("/") > 1
        or "\\" in text
    )
    if looks_local:
        what = "is a file, not a checkpoint directory" if path.exists() else "does not exist"
        raise CheckpointError(
            f"cannot load {text!r}: the path {what} (a Hub repo id looks like 'user/name')"
        )
    return None


def _offline(constants: Any) -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as the environment says now."""
    now = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(getattr(constants, "HF_HUB_OFFLINE", False)) or now


def _download(
    repo_id: str, revision: str | None, token: str | None, cache_dir: str | Path | None, where: str
) -> Path:
    hub = require_hub()
    constants = importlib.import_module("huggingface_hub.constants")
    errors = importlib.import_module("huggingface_hub.utils")
    offline = _offline(constants)
    cache = str(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
    try:
        folder = hub.snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            allow_patterns=ALLOW_PATTERNS,
            local_files_only=offline,
        )
    except errors.HFValidationError as e:
        raise CheckpointError(
            f"cannot load {repo_id!r}: not a directory, nor a valid Hub repo id ('user/name'): {e}"
        ) from e
    except errors.RevisionNotFoundError as e:
        raise CheckpointError(f"{where} does not exist on the Hugging Face Hub") from e
    except errors.RepositoryNotFoundError as e:
        raise CheckpointError(
            f"{where} was not found on the Hugging Face Hub (or it is private or gated: log in "
            "with `hf auth login` or pass token=)"
        ) from e
    except errors.LocalEntryNotFoundError as e:
        if offline:
            raise CheckpointError(
                f"cannot load {where}: HF_HUB_OFFLINE is set and it is not in the local "
                f"Hugging Face cache ({cache}); download it once with network access (unset "
                "HF_HUB_OFFLINE), point HF_HUB_CACHE at a cache that has it, or pass the path "
                "of a checkpoint directory"
            ) from e
        raise CheckpointError(
            f"cannot load {where}: the Hugging Face Hub could not be reached and it is not in "
            f"the local cache ({cache}): {e}"
        ) from e
    return Path(folder)


def _class_name(agent_id: str) -> str:
    """The class registered as ``agent_id`` (for error messages), else the id."""
    registry = REGISTRIES.get("agent")
    if registry is not None and agent_id in registry:
        return str(registry.get(agent_id).__name__)
    return repr(agent_id)
