"""Explicit schedules: plain objects queried by step, never advanced by the code that uses them.

``schedule(step) -> float``. Every schedule has a JSON-friendly :meth:`Schedule.spec` dict and a
DrQ-v2-style string (``str(schedule)``, e.g. ``"linear(1,0.1,100000)"``); :func:`parse_schedule`
reads both back, plus plain numbers. Negative steps are treated as step 0.
"""

from __future__ import annotations

import itertools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ScheduleSpec = Any  # str | float | int | Mapping[str, Any] | Schedule


def _num(x: float) -> str:
    """Shortest exact text for a number (integers without ``.0``)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"schedule {name} must be a finite number, got {value!r}")
    return float(value)


class Schedule(ABC):
    """A value as a function of the (environment or update) step."""

    @abstractmethod
    def __call__(self, step: int) -> float:
        """The value at ``step``."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON-friendly ``{"type": ..., **arguments}`` (inverse: :func:`parse_schedule`)."""

    @abstractmethod
    def __str__(self) -> str:
        """DrQ-v2-style string form (inverse: :func:`parse_schedule`)."""


@dataclass(frozen=True)
class Constant(Schedule):
    """Always ``value``."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite("value", self.value))

    def __call__(self, step: int) -> float:
        return self.value

    def spec(self) -> dict[str, Any]:
        return {"type": "constant", "value": self.value}

    def __str__(self) -> str:
        return _num(self.value)


@dataclass(frozen=True)
class Linear(Schedule):
    """``start`` to ``end`` linearly over ``duration`` steps, then ``end`` (DrQ-v2's ``linear``)."""

    start: float
    end: float
    duration: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "end", _finite("end", self.end))
        object.__setattr__(self, "duration", _finite("duration", self.duration))
        if self.duration <= 0:
            raise ValueError(f"Linear schedule duration must be > 0, got {self.duration}")

    def __call__(self, step: int) -> float:
        mix = min(max(step / self.duration, 0.0), 1.0)
        return (1.0 - mix) * self.start + mix * self.end

    def spec(self) -> dict[str, Any]:
        return {"type": "linear", "start": self.start, "end": self.end, "duration": self.duration}

    def __str__(self) -> str:
        return f"linear({_num(self.start)},{_num(self.end)},{_num(self.duration)})"


@dataclass(frozen=True)
class Exponential(Schedule):
    """``end + (start - end) * 0.5 ** (step / half_life)``: halves the gap to ``end`` every
    ``half_life`` steps (a half-life reads better in configs than a per-step decay rate)."""

    start: float
    end: float
    half_life: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _finite("start", self.start))
        object.__setattr__(self, "end", _finite("end", self.end))
        object.__setattr__(self, "half_life", _finite("half_life", self.half_life))
        if self.half_life <= 0:
            raise ValueError(f"Exponential schedule half_life must be > 0, got {self.half_life}")

    def __call__(self, step: int) -> float:
        return self.end + (self.start - self.end) * 0.5 ** (max(step, 0) / self.half_life)

    def spec(self) -> dict[str, Any]:
        return {
            "type": "exponential",
            "start": self.start,
            "end": self.end,
            "half_life": self.half_life,
        }

    def __str__(self) -> str:
        return f"exponential({_num(self.start)},{_num(self.end)},{_num(self.half_life)})"


@dataclass(frozen=True)
class Piecewise(Schedule):
    """Linear interpolation between ``(step, value)`` points with strictly increasing steps;
    the first value before the first point and the last value after the last one."""

    points: tuple[tuple[float, float], ...]

    def __init__(self, points: Sequence[Sequence[float]]) -> None:
        pts: list[tuple[float, float]] = []
        for p in points:
            if len(p) != 2:
                raise ValueError(f"Piecewise points are (step, value) pairs, got {p!r}")
            pts.append((_finite("step", p[0]), _finite("value", p[1])))
        if not pts:
            raise ValueError("Piecewise schedule needs at least one (step, value) point")
        if any(b[0] <= a[0] for a, b in itertools.pairwise(pts)):
            raise ValueError(f"Piecewise steps must be strictly increasing, got {pts}")
        object.__setattr__(self, "points", tuple(pts))

    def __call__(self, step: int) -> float:
        pts = self.points
        if step <= pts[0][0]:
            return pts[0][1]
        for (s0, v0), (s1, v1) in itertools.pairwise(pts):
            if step <= s1:
                mix = (step - s0) / (s1 - s0)
                return (1.0 - mix) * v0 + mix * v1
        return pts[-1][1]

    def spec(self) -> dict[str, Any]:
        return {"type": "piecewise", "points": [[s, v] for s, v in self.points]}

    def __str__(self) -> str:
        inner = ",".join(f"({_num(s)},{_num(v)})" for s, v in self.points)
        return f"piecewise({inner})"


_NUM = r"\s*([^,()\s]+)\s*"
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.DOTALL)
_PAIR = re.compile(r"\(" + _NUM + "," + _NUM + r"\)")
_FORMS = (
    "a number, 'linear(start,end,duration)', 'step_linear(start,end1,duration1,end2,duration2)', "
    "'exponential(start,end,half_life)', 'piecewise((step,value),...)', a dict with a 'type' "
    "key (constant, linear, exponential, piecewise) or a Schedule"
)
_BY_TYPE: dict[str, type[Schedule]] = {
    "constant": Constant,
    "linear": Linear,
    "exponential": Exponential,
    "piecewise": Piecewise,
}


def _floats(text: str, count: int, source: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        raise ValueError(f"schedule {source!r}: expected {count} numbers, got {len(parts)}")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"schedule {source!r}: arguments must be numbers") from None


def _parse_string(text: str) -> Schedule:
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return Constant(number)
    match = _CALL.match(text)
    if match is None:
        raise ValueError(f"cannot parse schedule {text!r}; expected {_FORMS}")
    name, args = match.group(1), match.group(2)
    if name == "linear":
        return Linear(*_floats(args, 3, text))
    if name in ("exponential", "exp"):
        return Exponential(*_floats(args, 3, text))
    if name == "step_linear":  # DrQ-v2: start -> end1 over duration1, then -> end2 over duration2
        start, end1, d1, end2, d2 = _floats(args, 5, text)
        return Piecewise([(0.0, start), (d1, end1), (d1 + d2, end2)])
    if name == "piecewise":
        pairs = _PAIR.findall(args)
        if not pairs or _PAIR.sub("", args).replace(",", "").strip():
            raise ValueError(f"schedule {text!r}: expected piecewise((step,value),...)")
        try:
            return Piecewise([(float(s), float(v)) for s, v in pairs])
        except ValueError as err:
            raise ValueError(f"schedule {text!r}: {err}") from None
    raise ValueError(f"unknown schedule {name!r} in {text!r}; expected {_FORMS}")


def parse_schedule(spec: ScheduleSpec) -> Schedule:
    """Build a :class:`Schedule` from a number, a string, a spec dict or a Schedule (returned)."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"cannot parse schedule {spec!r}; expected {_FORMS}")
    if isinstance(spec, int | float):
        return Constant(float(spec))
    if isinstance(spec, str):
        return _parse_string(spec)
    if isinstance(spec, Mapping):
        kind = spec.get("type")
        cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"schedule dict {dict(spec)!r} needs 'type' in {sorted(_BY_TYPE)}")
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"schedule dict {dict(spec)!r}: {err}") from None
    raise ValueError(f"cannot parse schedule {spec!r}; expected {_FORMS}")
