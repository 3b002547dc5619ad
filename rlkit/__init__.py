"""rlkit: a PyTorch reinforcement-learning toolkit built like Lego.

Sub-packages load on first use so ``import rlkit`` stays fast:
``rlkit.encoders``, ``rlkit.policies``, ``rlkit.storages``, ``rlkit.distributions``,
``rlkit.augmentations``, ``rlkit.rewards``, ``rlkit.envs``, ``rlkit.prototypes``,
``rlkit.agents``.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlkit.version import __version__

_SUBMODULES = {
    "agents",
    "augmentations",
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
    "hub",
    "logging",
    "normalization",
    "policies",
    "prototypes",
    "registry",
    "rewards",
    "schedules",
    "spaces",
    "storages",
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
