"""Lazy access to Hugging Face ``transformers`` (extra ``lm``), with one clear error."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from rlkit.envs.families import MissingExtraError

LM_INSTALL_HINT = 'pip install "rlkit[lm]"'
#: files that hold a model's weights (a directory without any holds a config only).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def require_transformers(what: str = "language-model RL") -> ModuleType:
    """The ``transformers`` module, or a :class:`MissingExtraError` naming the ``lm`` extra."""
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise MissingExtraError(f"{what} needs transformers: {LM_INSTALL_HINT}") from None


def require_module(module: str, what: str, extra: str = "lm") -> ModuleType:
    """``module`` imported, or a :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f'{what} needs {module}: pip install "rlkit[{extra}]"') from None


def check_source(name: str, what: str) -> None:
    """Refuse, in one line, a ``name`` written as a local path that does not exist (Hugging
    Face would report it as a malformed repository id)."""
    looks_local = name.startswith(("/", "./", "../", "~")) or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        raise FileNotFoundError(
            f"{what} {name!r}: no such directory (give a save_pretrained directory or a model "
            "name in the Hugging Face cache)"
        )


@contextlib.contextmanager
def _clear_errors(name: str, what: str) -> Iterator[None]:
    """Hugging Face's errors for a missing model, as one line naming it."""
    try:
        yield
    except OSError as e:
        raise OSError(
            f"{what} {name!r} is neither a local directory nor in the Hugging Face cache, "
            f"and could not be downloaded: {_first_line(e)}"
        ) from None
    except ValueError as e:  # e.g. a directory without tokenizer files
        raise ValueError(f"{what} {name!r} could not be loaded: {_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def load_causal_lm(model: str, dtype: torch.dtype | None = None) -> Any:
    """``AutoModelForCausalLM`` from a local directory or the Hugging Face cache (no remote
    code); a directory with a config and no weights builds the architecture only."""
    transformers = require_transformers("a causal language model")
    check_source(model, "model")
    path = Path(model)
    with _clear_errors(model, "model"):
        if path.is_dir() and not any((path / f).exists() for f in WEIGHT_FILES):
            config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=False)
            return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
        return transformers.AutoModelForCausalLM.from_pretrained(
            model, trust_remote_code=False, dtype=dtype
        )


def load_tokenizer(name: str) -> Any:
    """``AutoTokenizer`` from a local directory or the cache; a missing pad token becomes the
    end-of-sequence token (GPT-2 has none)."""
    transformers = require_transformers("a causal language model")
    check_source(name, "tokenizer")
    with _clear_errors(name, "tokenizer"):
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
