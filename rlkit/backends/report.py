"""What each component of an agent runs on, and why it fell back where it did."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("rlkit")


@dataclass(frozen=True)
class Choice:
    """One component's implementation under the agent's backend."""

    #: what it is, e.g. ``"policy evaluation"``, ``"optimizer critic"``, ``"loss value"``.
    component: str
    #: what runs, e.g. ``"fused actor-critic kernel"``, ``"autograd"``.
    implementation: str
    #: why the backend's faster implementation was not taken (None: no fallback).
    fallback_reason: str | None = None

    def __str__(self) -> str:
        text = f"{self.component}: {self.implementation}"
        return f"{text} (fallback: {self.fallback_reason})" if self.fallback_reason else text


class BackendReport:
    """Collects :class:`Choice` records as components first run; logged once per run."""

    def __init__(self, owner: str, backend: str) -> None:
        self.owner = owner
        self.backend = backend
        self._choices: dict[str, Choice] = {}
        self._logged = False

    def record(self, component: str, implementation: str, reason: str | None = None) -> None:
        """Record (or update) what ``component`` runs on."""
        self._choices[component] = Choice(component, implementation, reason)

    @property
    def choices(self) -> list[Choice]:
        return list(self._choices.values())

    def as_dict(self) -> dict[str, dict[str, str | None]]:
        """``{component: {"implementation": ..., "fallback_reason": ...}}``."""
        return {
            c.component: {"implementation": c.implementation, "fallback_reason": c.fallback_reason}
            for c in self._choices.values()
        }

    def log_once(self) -> None:
        """Log every choice at INFO level the first time it is called (fallbacks say why)."""
        if self._logged or not self._choices:
            return
        self._logged = True
        lines = "\n".join(f"  {c}" for c in self._choices.values())
        log.info("%s runs on the %r backend:\n%s", self.owner, self.backend, lines)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self._choices.values())


__all__ = ["BackendReport", "Choice"]
