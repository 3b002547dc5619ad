"""Hyperparameters described from their dataclasses: name, type, default and the one-line
meaning written in the ``#:`` comment above each field (what ``rlkit train ALGO --help`` and
the resolved-config printout show)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldDoc:
    """One hyperparameter: its name, type (as written), default and meaning."""

    name: str
    type: str
    default: Any
    meaning: str


def _comments(klass: type) -> dict[str, tuple[str, str]]:
    """``{field: (annotation, meaning)}`` from ``klass``'s own source: the ``#:`` comment
    block right above each annotated field ('' where there is none)."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):  # built dynamically or without source
        return {}
    lines = source.splitlines()
    node = ast.parse(source).body[0]
    out: dict[str, tuple[str, str]] = {}
    if not isinstance(node, ast.ClassDef):
        return out
    for item in node.body:
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        annotation = ast.unparse(item.annotation)
        if "ClassVar" in annotation:
            continue
        block: list[str] = []  # the consecutive ``#:`` lines right above the field
        row = item.lineno - 2  # (0-based)
        while row >= 0 and lines[row].strip().startswith("#:"):
            block.insert(0, lines[row].strip()[2:].strip())
            row -= 1
        meaning = " ".join(" ".join(block).split())
        out[item.target.id] = (annotation, meaning)
    return out


def describe_config(config_cls: type) -> list[FieldDoc]:
    """Every field of the dataclass ``config_cls`` (inherited ones included, in declaration
    order) with its type, default and meaning; a field a subclass redeclares takes the
    subclass's default and, where it has one, its comment."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"describe_config: {config_cls!r} is not a dataclass")
    notes: dict[str, tuple[str, str]] = {}
    for klass in reversed(config_cls.__mro__):
        if dataclasses.is_dataclass(klass):
            for name, (annotation, meaning) in _comments(klass).items():
                old = notes.get(name, ("", ""))
                notes[name] = (annotation or old[0], meaning or old[1])
    out = []
    for field in dataclasses.fields(config_cls):
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        annotation, meaning = notes.get(field.name, (str(field.type), ""))
        out.append(FieldDoc(field.name, annotation, default, meaning))
    return out


def format_config_help(config_cls: type, width: int = 100) -> str:
    """The fields of ``config_cls`` as aligned ``--flag TYPE  default  meaning`` lines."""
    docs = describe_config(config_cls)
    lines = []
    indent = " " * 6
    for doc in docs:
        flag = f"--{doc.name.replace('_', '-')}"
        lines.append(f"  {flag} {doc.type} (default {doc.default!r})")
        meaning = doc.meaning or "(no description)"
        lines.extend(textwrap.wrap(meaning, width, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)


__all__ = ["FieldDoc", "describe_config", "format_config_help"]
