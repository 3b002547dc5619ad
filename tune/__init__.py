"""Hyperparameter search (``rlkit tune``): Optuna embedded by default, Ray Tune to scale out.

The layer above the agents: ``cli -> tune -> agents -> prototypes -> core``. Optuna and Ray
are imported only when a search runs (extras ``tune`` and ``tune-ray``). See
``docs/tuning.md``.
"""

from __future__ import annotations

import rlkit.agents  # noqa: F401  (registers the reference agents that ids name)

from .records import TrialRecord
from .space import Param, SearchSpace, SpaceError, builtin_space, builtin_spaces
from .study import BACKENDS, TuneResult, tune

__all__ = [
    "BACKENDS",
    "Param",
    "SearchSpace",
    "SpaceError",
    "TrialRecord",
    "TuneResult",
    "builtin_space",
    "builtin_spaces",
    "tune",
]
