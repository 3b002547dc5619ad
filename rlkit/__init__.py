"""rlkit: a PyTorch reinforcement-learning toolkit built like Lego.

Core sub-packages load on first use so ``import rlkit`` stays fast: ``rlkit.encoders``,
``rlkit.policies``, ``rlkit.storages``, ``rlkit.distributions``, ``rlkit.augmentations``,
``rlkit.rewards``, ``rlkit.losses``, ``rlkit.backends``, ``rlkit.envs``, ... The layers above
core are imported explicitly (``import rlkit.agents``, ``import rlkit.prototypes``): core never
imports them.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlkit.version import __version__

_SUBMODULES = {
    "augmentations",
    "backends",
    "checkpoint",
    "config",
    "configurable",
    "device",
    "distributed",
    "distributions",
    "encoders",
    "envs",
    "evaluation",
    "export",
    "guard",
    "hub",
    "logging",
    "losses",
    "normalization",
    "policies",
    "registry",
    "rewards",
    "runtime",
    "schedules",
    "spaces",
    "storages",
    "trust",
    "types",
    "utils",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"rlkit.{name}")
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_SUBMODULES, "__version__"])


__all__ = ["__version__"]
