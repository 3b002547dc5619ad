"""Nothing executes from files unless the user says so (``trust_code=True``, ``--trust-code``).

Checkpoints, replay files, Hub downloads and exported files may name only registered things
(agent and primitive ids, gymnasium env ids, goal function ids). A name that would import a
module (a gymnasium ``"module:Env"`` env id, a ``"package.module:function"`` HER reward
function) is refused while such a file is read, unless the caller passed ``trust_code=True``.
What you type yourself (Python arguments, ``rlkit train --env``, a ``--config`` YAML) is
explicit and stays allowed.

Loaders mark the file they read with :func:`reading`; code that would import a name it was
given asks :func:`check_import` first. The mark is a context variable, so a loader's trust
reaches the loaders it calls (an agent checkpoint and the replay file inside it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

#: what the errors tell users to pass (the keyword and the command-line flag).
TRUST_OPTION = "trust_code=True / --trust-code"


class UntrustedCodeError(ValueError):
    """A file names code (an import path) and the caller did not pass ``trust_code=True``."""


@dataclass(frozen=True)
class _Reading:
    source: str
    trusted: bool


_READING: ContextVar[_Reading | None] = ContextVar("rlkit_reading", default=None)


@contextmanager
def reading(source: str, trust_code: bool = False) -> Iterator[None]:
    """Mark the block as reading the file ``source`` (e.g. ``"checkpoint runs/ppo/final"``):
    names in it that would import code are refused unless ``trust_code`` or an enclosing
    :func:`reading` block trusts its file."""
    outer = _READING.get()
    trusted = bool(trust_code) or (outer is not None and outer.trusted)
    token = _READING.set(_Reading(source, trusted))
    try:
        yield
    finally:
        _READING.reset(token)


def check_import(value: str, what: str, instead: str) -> None:
    """Raise :class:`UntrustedCodeError` when ``value`` (an import path ``"module:name"``,
    naming ``what``) was read from a file that is not trusted; ``instead`` says what the user
    can do other than trusting it. Values given outside a :func:`reading` block are allowed."""
    current = _READING.get()
    if current is None or current.trusted:
        return
    raise untrusted(current.source, value, what, instead)


def untrusted(source: str, value: str, what: str, instead: str) -> UntrustedCodeError:
    """The one-line error for ``value`` (an import path naming ``what``) read from ``source``."""
    module = value.partition(":")[0]
    return UntrustedCodeError(
        f"{source} names {what} {value!r}, which would import the module {module!r} and run "
        f"its code; {instead}, or pass {TRUST_OPTION} if you trust it"
    )


__all__ = ["TRUST_OPTION", "UntrustedCodeError", "check_import", "reading", "untrusted"]
