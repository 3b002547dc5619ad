"""What a study produced, whichever backend ran it: one :class:`TrialRecord` per trial."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from typing import Any

STATES = ("complete", "pruned", "failed", "running")


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial: its number, outcome, score (mean final return over the study's seeds; for a
    pruned trial the last intermediate score), the values drawn, the steps it trained and the
    seconds it took; ``error`` says why a failed trial failed."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    steps: int = 0
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def best_of(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The complete trial with the highest score (the lowest number among equals)."""
    done = [r for r in records if r.state == "complete" and r.value is not None]
    if not done:
        return None
    return max(done, key=lambda r: (r.value, -r.number))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return json.dumps(value) if not isinstance(value, str) else value


def table(records: Sequence[TrialRecord], limit: int | None = None) -> str:
    """A plain-text table of trials, best first (complete, then pruned, then failed)."""
    names: list[str] = []
    for r in records:
        names += [n for n in r.params if n not in names]
    order = {"complete": 0, "pruned": 1, "running": 2, "failed": 3}
    rows = sorted(
        records,
        key=lambda r: (order.get(r.state, 4), -(r.value if r.value is not None else -math.inf)),
    )
    if limit is not None:
        rows = rows[:limit]
    header = ["trial", "state", "value", "steps", "seconds", *names]
    body = [
        [
            str(r.number),
            r.state,
            _fmt(r.value),
            str(r.steps),
            f"{r.seconds:.1f}",
            *(_fmt(r.params.get(n)) if n in r.params else "" for n in names),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(line.rstrip() for line in lines)


def to_csv(records: Sequence[TrialRecord]) -> str:
    """Every trial as CSV: number, state, value, steps, seconds, error, one column per param."""
    names: list[str] = []
    for r in records:
        names += [n for n in r.params if n not in names]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "state", "value", "steps", "seconds", "error", *names])
    for r in sorted(records, key=lambda r: r.number):
        writer.writerow(
            [
                r.number,
                r.state,
                "" if r.value is None else repr(r.value),
                r.steps,
                f"{r.seconds:.3f}",
                r.error or "",
                *(json.dumps(r.params[n]) if n in r.params else "" for n in names),
            ]
        )
    return out.getvalue()


def counts(records: Sequence[TrialRecord]) -> dict[str, int]:
    return {state: sum(r.state == state for r in records) for state in STATES}


__all__ = ["STATES", "TrialRecord", "best_of", "counts", "table", "to_csv"]
