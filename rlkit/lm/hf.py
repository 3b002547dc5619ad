"""Lazy access to Hugging Face ``transformers`` (extra ``lm``), with one clear error."""

from __future__ import annotations

import importlib
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


def load_causal_lm(model: str, dtype: torch.dtype | None = None) -> Any:
    """``AutoModelForCausalLM`` from a local directory or the Hugging Face cache (no remote
    code); a directory with a config and no weights builds the architecture only."""
    transformers = require_transformers("a causal language model")
    path = Path(model)
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
    tokenizer = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
