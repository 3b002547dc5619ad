"""Explicit schedules: values at key steps, DrQ-v2 string format, spec/str round trips, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlkit.schedules import (
    Constant,
    Exponential,
    Linear,
    Piecewise,
    Schedule,
    parse_schedule,
)


def drqv2_schedule(schdl: str, step: int) -> float:
    """DrQ-v2's utils.schedule for 'linear(...)' and 'step_linear(...)', re-derived."""
    name, args = schdl.split("(", 1)
    vals = [float(x) for x in args.rstrip(")").split(",")]
    if name == "linear":
        init, final, duration = vals
        mix = np.clip(step / duration, 0.0, 1.0)
        return float((1.0 - mix) * init + mix * final)
    init, final1, d1, final2, d2 = vals
    if step <= d1:
        mix = np.clip(step / d1, 0.0, 1.0)
        return float((1.0 - mix) * init + mix * final1)
    mix = np.clip((step - d1) / d2, 0.0, 1.0)
    return float((1.0 - mix) * final1 + mix * final2)


def test_constant():
    s = Constant(0.2)
    assert s(0) == s(10**9) == 0.2


def test_linear_key_steps_and_clamping():
    s = Linear(1.0, 0.1, 100000)
    assert s(0) == 1.0
    assert s(50000) == pytest.approx(0.55)
    assert s(100000) == pytest.approx(0.1)
    assert s(10**7) == pytest.approx(0.1)
    assert s(-5) == 1.0


def test_exponential_half_life():
    s = Exponential(1.0, 0.1, half_life=1000)
    assert s(0) == 1.0
    assert s(1000) == pytest.approx(0.1 + 0.9 / 2)
    assert s(3000) == pytest.approx(0.1 + 0.9 / 8)
    assert s(10**6) == pytest.approx(0.1)
    assert s(-10) == 1.0


def test_piecewise_interpolates_and_holds_ends():
    s = Piecewise([(100, 1.0), (200, 0.5), (400, 0.0)])
    assert s(0) == 1.0 and s(100) == 1.0
    assert s(150) == pytest.approx(0.75)
    assert s(200) == pytest.approx(0.5)
    assert s(300) == pytest.approx(0.25)
    assert s(400) == 0.0 and s(10**6) == 0.0
    assert Piecewise([(5, 2.0)])(0) == Piecewise([(5, 2.0)])(99) == 2.0


@pytest.mark.parametrize(
    "text",
    ["linear(1.0,0.1,100000)", "linear(1.0, 0.1, 500000)", "step_linear(1.0,0.5,1000,0.1,3000)"],
)
def test_parse_matches_drqv2(text):
    s = parse_schedule(text)
    for step in [0, 1, 500, 999, 1000, 1001, 2500, 4000, 10**5, 3 * 10**5, 10**6]:
        assert s(step) == pytest.approx(drqv2_schedule(text.replace(" ", ""), step), abs=1e-12)


def test_parse_numbers():
    assert parse_schedule(0.2) == Constant(0.2)
    assert parse_schedule(1) == Constant(1.0)
    assert parse_schedule("0.3") == Constant(0.3)
    assert parse_schedule("1e-4")(123) == pytest.approx(1e-4)


SCHEDULES = [
    Constant(0.25),
    Constant(3),
    Linear(1.0, 0.1, 100000),
    Linear(-2.5, 1e-5, 7.5),
    Exponential(1.0, 0.05, 2000),
    Piecewise([(0, 1.0), (1000, 0.5), (5000, 0.1)]),
    Piecewise([(10.5, -1.0)]),
]


@pytest.mark.parametrize("sched", SCHEDULES, ids=repr)
def test_round_trips(sched: Schedule) -> None:
    spec = sched.spec()
    assert json.loads(json.dumps(spec)) == spec
    from_spec = parse_schedule(json.loads(json.dumps(spec)))
    from_str = parse_schedule(str(sched))
    assert from_spec == sched and from_str == sched
    assert parse_schedule(sched) is sched
    for step in [0, 7, 1000, 10**6]:
        assert from_str(step) == sched(step)
    assert type(sched).__name__ in repr(sched)


def test_string_forms():
    assert str(Linear(1.0, 0.1, 100000)) == "linear(1,0.1,100000)"
    assert str(Exponential(1, 0, 10)) == "exponential(1,0,10)"
    assert str(Piecewise([(0, 1), (10, 0.5)])) == "piecewise((0,1),(10,0.5))"
    assert parse_schedule("exp(1,0,10)") == Exponential(1, 0, 10)
    assert parse_schedule(" piecewise( (0, 1), (10, 0.5) ) ") == Piecewise([(0, 1), (10, 0.5)])


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("linear(1.0,0.1)", "expected 3 numbers"),
        ("linear(a,b,c)", "must be numbers"),
        ("cosine(1,0,10)", "unknown schedule 'cosine'"),
        ("fast", "cannot parse schedule"),
        ("linear(1,0,0)", "duration must be > 0"),
        ("exponential(1,0,-3)", "half_life must be > 0"),
        ("piecewise((10,1),(5,0))", "strictly increasing"),
        ("piecewise(1,2)", "piecewise"),
        ("piecewise((0,1),junk)", "piecewise"),
        ("nan", "finite"),
        (True, "cannot parse schedule"),
        ([1, 2], "cannot parse schedule"),
        ({"start": 1.0}, "needs 'type'"),
        ({"type": "linear", "start": 1.0}, "schedule dict"),
        ({"type": "linear", "start": 1, "end": 0, "duration": 10, "extra": 1}, "schedule dict"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_schedule(spec)


def test_bad_constructor_values():
    with pytest.raises(ValueError, match="finite"):
        Linear(math.inf, 0.0, 10)
    with pytest.raises(ValueError, match="at least one"):
        Piecewise([])
    with pytest.raises(ValueError, match="pairs"):
        Piecewise([(0, 1, 2)])
