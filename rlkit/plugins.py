"""Plugin modules: your own envs, wrappers and primitives, imported by name
(``rlkit train --import my_envs``) and recorded in checkpoints so ``rlkit eval`` and
``rlkit export`` can find them again.

A checkpoint lists the modules it was trained with: those imported through
:func:`import_plugins` and the modules defining any registered class it uses outside rlkit
(a custom agent, policy or encoder). Loading it never imports them on its own: the caller
imports them (``--import``, or ``import my_envs`` in Python), or lets the checkpoint import
what it names with the explicit trust option (see :mod:`rlkit.trust`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

#: modules imported through :func:`import_plugins` in this process, in order.
_IMPORTED: list[str] = []

#: top-level packages that are rlkit itself (never recorded as plugins).
_OWN = ("rlkit", "agents", "prototypes", "cli", "tune")


class PluginImportError(ImportError):
    """A plugin module named by the user could not be imported (one line)."""


def is_plugin_module(module: str) -> bool:
    """Whether ``module`` is outside rlkit and not a built-in module (worth recording)."""
    top = module.partition(".")[0]
    return bool(top) and top not in _OWN and module != "__main__" and top != "builtins"


def import_plugins(names: Iterable[str]) -> list[str]:
    """Import each module name (``my_envs``, ``lab.models``) and remember it for the
    checkpoints saved by this process. The current directory is searched first, as
    ``python -m`` does. Returns the names imported."""
    _with_cwd_importable()
    done = []
    for name in names:
        if not isinstance(name, str) or not name or any(c in name for c in "/\\: "):
            raise PluginImportError(
                f"--import {name!r}: give a module name as you would import it "
                "('my_envs', 'lab.models'), not a path"
            )
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                raise PluginImportError(
                    f"--import {name}: no module named {e.name!r} (looked in the current "
                    "directory and the installed packages)"
                ) from None
            raise
        if name not in _IMPORTED:
            _IMPORTED.append(name)
        done.append(name)
    return done


def forget_imported_plugins() -> None:
    """Start a new record of imported plugins (each CLI command records only its own)."""
    _IMPORTED.clear()


def imported_plugins() -> list[str]:
    """The plugin modules imported through :func:`import_plugins` so far."""
    return list(_IMPORTED)


def plugins_in(specs: Any, classes: Iterable[type] = ()) -> list[str]:
    """Plugin modules a checkpoint needs: those imported by :func:`import_plugins`, the
    modules of ``classes`` and of every registered primitive named in ``specs`` (the JSON of
    a config, walked for ``{"__primitive__": kind, "id": ...}``), outside rlkit."""
    from rlkit.configurable import registry_of

    found = list(_IMPORTED)
    modules = [cls.__module__ for cls in classes]

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            kind, id = value.get("__primitive__"), value.get("id")
            if isinstance(kind, str) and isinstance(id, str):
                cls = registry_of(kind).lookup(id)
                if cls is not None:
                    modules.append(cls.__module__)
            for v in value.values():
                walk(v)

    walk(specs)
    for module in modules:
        if is_plugin_module(module) and module not in found:
            found.append(module)
    return found


def missing_plugins(names: Sequence[str]) -> list[str]:
    """The modules of ``names`` not imported in this process."""
    return [n for n in names if n not in sys.modules]


def ensure_plugins(names: Any, source: str, trust_code: bool = False) -> None:
    """Make sure the plugin modules a file (``source``, e.g. ``"checkpoint runs/x/final"``)
    was made with are imported: those not imported yet are imported only with
    ``trust_code``; otherwise the error says to import them (``--import NAME``)."""
    from rlkit.trust import check_import, reading

    if not isinstance(names, list):
        return
    missing = missing_plugins([str(n) for n in names])
    if not missing:
        return
    with reading(source, trust_code):
        for name in missing:
            check_import(
                name,
                "a plugin module it was made with",
                f"import it yourself first (--import {name}, or `import {name}` in Python)",
            )
    import_plugins(missing)


def _with_cwd_importable() -> None:
    """Put the current directory first on ``sys.path`` (as ``python -m`` does) if absent."""
    if "" not in sys.path and not any(_same_as_cwd(p) for p in sys.path):
        sys.path.insert(0, "")


def _same_as_cwd(path: str) -> bool:
    import os

    try:
        return os.path.samefile(path, os.getcwd())
    except OSError:
        return False


__all__ = [
    "PluginImportError",
    "ensure_plugins",
    "import_plugins",
    "imported_plugins",
    "is_plugin_module",
    "missing_plugins",
    "plugins_in",
]
