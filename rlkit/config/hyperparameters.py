"""Hyperparameter dataclasses: one source of truth for Python keywords, YAML files and CLI flags."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class UnknownHyperparameterError(TypeError):
    """A hyperparameter name that the agent does not have."""


def field_names(config_cls: type[Any]) -> list[str]:
    """Names of the hyperparameters of a config dataclass."""
    return [f.name for f in dataclasses.fields(config_cls)]


def check_known(config_cls: type[Any], names: typing.Iterable[str], owner: str) -> None:
    """Raise listing the valid names if any of ``names`` is not a field of ``config_cls``."""
    valid = field_names(config_cls)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise UnknownHyperparameterError(
            f"{owner}: unknown hyperparameter(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )


def make_config(
    config_cls: type[C],
    base: C | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    owner: str,
) -> C:
    """Build a config from an optional base (dataclass or mapping) plus keyword overrides."""
    values: dict[str, Any] = {}
    if base is not None:
        if dataclasses.is_dataclass(base) and not isinstance(base, type):
            values.update(dataclasses.asdict(base))
        elif isinstance(base, Mapping):
            values.update(base)
        else:
            raise TypeError(f"{owner}: config must be a {config_cls.__name__} or a mapping")
    values.update(overrides)
    check_known(config_cls, values, owner)
    hints = typing.get_type_hints(config_cls)
    coerced = {k: coerce(v, hints[k], f"{owner}: {k}") for k, v in values.items()}
    return config_cls(**coerced)


def parse_value(text: str) -> Any:
    """Parse a command-line value as a YAML scalar/flow value (``1e-3``, ``true``, ``[64, 64]``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert ``value`` to ``annotation`` where that is lossless, or raise naming ``where``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise TypeError(f"{where}: {value!r} does not fit {annotation}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"{where}: expected one of {list(args)}, got {value!r}")
    if origin in (tuple, list) or annotation in (tuple, list):
        if isinstance(value, str):
            value = parse_value(value)
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [coerce(v, inner, where) for v in value]
        return tuple(items) if (origin or annotation) is tuple else items
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise TypeError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)  # also accepts "1e6", which YAML reads as a string
            except ValueError:
                number = float("nan")
            if number.is_integer():
                return int(number)
        raise TypeError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TypeError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"{where}: expected a string, got {value!r}")
    return value


def require(config: Any, checks: Mapping[str, bool], rule: str) -> None:
    """Raise one ValueError naming every hyperparameter whose check failed, its value and
    ``rule`` (what is allowed); used by the config dataclasses' ``__post_init__``."""
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        values = ", ".join(f"{name}={getattr(config, name)!r}" for name in bad)
        raise ValueError(f"invalid hyperparameter(s): {values} ({rule})")


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a config dataclass (tuples become lists)."""
    out = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
