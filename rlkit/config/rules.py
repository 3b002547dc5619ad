"""Declared value rules: one declaration gives both the check and the message.

A config dataclass lists its rules in a ``rules`` class attribute (``{field: Rule}``) and a
primitive in ``argument_rules`` (``{argument: Rule}``); subclasses add or replace entries and
:func:`rules_of` merges them along the class hierarchy. :func:`check_config` and
:func:`check_arguments` raise one ``ValueError`` naming every bad value and what is allowed,
and :func:`describe_rules` lists the rules for the documentation.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rlkit.config.hyperparameters import coerce

#: rule tables are read from these class attributes.
CONFIG_RULES = "rules"
ARGUMENT_RULES = "argument_rules"


def _number(x: float) -> str:
    """``1`` for integral values, the shortest float repr otherwise."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Rule(ABC):
    """What values one setting allows. ``problem`` says what is wrong (None when allowed)."""

    #: None is allowed too.
    none: bool = False

    @abstractmethod
    def describe(self) -> str:
        """What is allowed, as it reads after "must be" (``"> 0"``, ``"in [0, 1]"``)."""

    @abstractmethod
    def allows(self, value: Any) -> bool:
        """Whether ``value`` (never None) is allowed."""

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is allowed, else the allowed values (plus why, if known)."""
        if value is None:
            return None if self.none else self.describe()
        return None if self.allows(value) else self.describe()

    def _or_none(self, text: str) -> str:
        return f"{text} or None" if self.none else text


@dataclasses.dataclass(frozen=True)
class Range(Rule):
    """A finite number (an integer with ``integer=True``) between optional bounds; ``also``
    lists extra allowed values (``gradient_steps=-1``)."""

    low: float | None = None
    high: float | None = None
    #: exclude the bound itself (``> 0`` rather than ``>= 0``).
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    none: bool = False
    also: tuple[float, ...] = ()

    def allows(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if value in self.also:
            return True
        x = float(value)
        if not math.isfinite(x):
            return False
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def problem(self, value: Any) -> str | None:
        found = super().problem(value)
        if found is None or not _is_real(value) or math.isfinite(float(value)):
            return found
        return found if found.startswith(("a ", "an ")) else f"finite and {found}"

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            text = f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
            if self.integer:
                text = f"{kind} {text}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {_number(self.low)}"
            if self.integer:
                text = f"{kind} {text}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {_number(self.high)}"
            if self.integer:
                text = f"{kind} {text}"
        else:
            text = kind
        for extra in self.also:
            text += f" or {_number(extra)}"
        return self._or_none(text)


@dataclasses.dataclass(frozen=True)
class OneOf(Rule):
    """One of a fixed set of values (``note`` says why, when the set is surprising)."""

    choices: tuple[Any, ...]
    none: bool = False
    note: str = ""

    def allows(self, value: Any) -> bool:
        return any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices
        )

    def describe(self) -> str:
        if len(self.choices) == 1:
            text = repr(self.choices[0])
        else:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        text = self._or_none(text)
        return f"{text} ({self.note})" if self.note else text


@dataclasses.dataclass(frozen=True)
class Sizes(Rule):
    """A list of integers each ``>= minimum`` (layer widths, channel counts)."""

    minimum: int = 1
    nonempty: bool = False
    none: bool = False

    def allows(self, value: Any) -> bool:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            return False
        if self.nonempty and not value:
            return False
        return all(Range(self.minimum, integer=True).allows(v) for v in value)

    def describe(self) -> str:
        size = "a non-empty list" if self.nonempty else "a list"
        return self._or_none(f"{size} of integers >= {self.minimum}")


@dataclasses.dataclass(frozen=True)
class ListOf(Rule):
    """A list whose items each follow ``item`` (weights, angles)."""

    item: Rule
    nonempty: bool = False
    none: bool = False

    def allows(self, value: Any) -> bool:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            return False
        if self.nonempty and not value:
            return False
        return all(v is not None and self.item.problem(v) is None for v in value)

    def describe(self) -> str:
        size = "a non-empty list" if self.nonempty else "a list"
        return self._or_none(f"{size} of values each {self.item.describe()}")


@dataclasses.dataclass(frozen=True)
class Satisfies(Rule):
    """Any rule with a test function: ``test(value)`` returns a truth value, or raises
    ValueError/TypeError whose message says what is wrong."""

    test: Callable[[Any], object]
    text: str
    none: bool = False

    def allows(self, value: Any) -> bool:
        return self.problem(value) is None

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.none else self.describe()
        try:
            ok = self.test(value)
        except (TypeError, ValueError) as e:
            return f"{self.describe()}: {e}"
        return None if ok else self.describe()

    def describe(self) -> str:
        return self._or_none(self.text)


# --------------------------------------------------------------------------- shorthands
def positive(none: bool = False) -> Range:
    """``> 0`` (learning rates, scales, clips)."""
    return Range(0, low_open=True, none=none)


def non_negative(none: bool = False) -> Range:
    """``>= 0`` (loss coefficients, noise scales)."""
    return Range(0, none=none)


def unit(none: bool = False) -> Range:
    """``in [0, 1]`` (discounts, probabilities, fractions)."""
    return Range(0, 1, none=none)


def count(minimum: int = 1, none: bool = False, integer: bool = False) -> Range:
    """``>= minimum`` for counts and sizes; ``integer=True`` where the type is not enforced
    already (primitive arguments)."""
    return Range(minimum, integer=integer, none=none)


def finite() -> Range:
    """Any finite number."""
    return Range()


def optional(rule: Rule) -> Rule:
    """``rule``, with None allowed as well."""
    return dataclasses.replace(rule, none=True)  # type: ignore[type-var]


SEED = Range(0, 2**32 - 1, integer=True, none=True)
"""Seeds: what NumPy accepts (``[0, 2**32 - 1]``), or None."""


def _pair(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(_is_real(v) and math.isfinite(float(v)) for v in value)
        and float(value[0]) < float(value[1])
    )


def _device(value: Any) -> bool:
    import torch

    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    name = value.lower()
    if name == "auto" or re.fullmatch(r"npu(:\d+)?", name):  # torch knows npu once torch_npu loads
        return True
    try:
        torch.device(name)
    except RuntimeError:
        return False
    return True


DEVICE = Satisfies(_device, "'auto' or a torch device name ('cpu', 'cuda', 'cuda:1', 'npu', 'mps')")
"""Device settings (whether the device is present is checked where it is used)."""


PAIR = Satisfies(_pair, "a pair [low, high] of finite numbers with low < high")
"""Bounds such as ``log_std_bounds``."""


# --------------------------------------------------------------------------- tables
def rules_of(cls: type, attribute: str = CONFIG_RULES) -> dict[str, Rule]:
    """The rule table of ``cls``: every class's ``attribute`` along the MRO, subclasses'
    entries replacing their bases'."""
    merged: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get(attribute, {}))
    return merged


def violations(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> list[tuple[str, str]]:
    """``(name, what is allowed)`` for every value of ``values`` its rule refuses."""
    found = []
    for name, rule in rules.items():
        if name in values:
            problem = rule.problem(values[name])
            if problem is not None:
                found.append((name, problem))
    return found


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a config class (resolved once per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def check_config(config: Any) -> None:
    """Convert the fields of a config dataclass to their declared types (losslessly, as
    :func:`~rlkit.config.coerce` does) and check them against its rules; raise one
    ``ValueError`` naming each bad hyperparameter, its value and what is allowed."""
    cls = type(config)
    hints = _hints(cls)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        converted = coerce(value, hints[field.name], f"{cls.__name__}: {field.name}")
        if converted is not value:
            object.__setattr__(config, field.name, converted)
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    bad = violations(values, rules_of(cls))
    if bad:
        shown = ", ".join(f"{name}={values[name]!r}" for name, _ in bad)
        allowed = "; ".join(f"{name} must be {text}" for name, text in bad)
        raise ValueError(f"invalid hyperparameter(s): {shown} ({allowed})")


def check_arguments(owner: str, values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Raise one ``ValueError`` ``"<owner>: <arg> must be <allowed>, got <value>"`` for the
    arguments in ``values`` that their rules refuse."""
    bad = violations(values, rules)
    if bad:
        parts = [f"{name} must be {text}, got {values[name]!r}" for name, text in bad]
        raise ValueError(f"{owner}: " + "; ".join(parts))


def describe_rules(cls: type, attribute: str = CONFIG_RULES) -> dict[str, str]:
    """``{name: what is allowed}`` for every rule of ``cls`` (the documentation's table)."""
    return {name: rule.describe() for name, rule in rules_of(cls, attribute).items()}


def rules_markdown(classes: Sequence[type], attribute: str = CONFIG_RULES) -> str:
    """One Markdown table per class of the rules it declares itself (``### `Name` ``, then
    ``| name | allowed |`` rows); classes that declare none are left out."""
    parts = []
    for cls in classes:
        own = cls.__dict__.get(attribute, {})
        if not own:
            continue
        rows = [f"### `{cls.__name__}`", "", "| name | allowed |", "| --- | --- |"]
        for name, rule in own.items():
            allowed = rule.describe().replace("|", "\\|")
            rows.append(f"| `{name}` | {allowed} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


__all__ = [
    "ARGUMENT_RULES",
    "CONFIG_RULES",
    "DEVICE",
    "PAIR",
    "SEED",
    "ListOf",
    "OneOf",
    "Range",
    "Rule",
    "Satisfies",
    "Sizes",
    "check_arguments",
    "check_config",
    "count",
    "describe_rules",
    "finite",
    "non_negative",
    "optional",
    "positive",
    "rules_markdown",
    "rules_of",
    "unit",
    "violations",
]
