"""Space JSON round trips and structural equality."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from rlkit.spaces import (
    check_space,
    flat_dim,
    is_image_space,
    space_from_dict,
    space_to_dict,
    spaces_equal,
)


def round_trip(space):
    # allow_nan=False: the description must be strict JSON (no bare Infinity/NaN)
    text = json.dumps(space_to_dict(space), allow_nan=False)
    return space_from_dict(json.loads(text))


def assert_box_equal(a, b):
    assert isinstance(b, spaces.Box)
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.high, b.high)


def test_box_vector_round_trip():
    space = spaces.Box(-2.0, 3.0, (4,), np.float32)
    back = round_trip(space)
    assert_box_equal(space, back)
    assert back == space
    assert spaces_equal(space, back)


def test_box_uint8_image_round_trip_is_compact():
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    d = space_to_dict(space)
    # uniform bounds are stored as one scalar, not 28224 values
    assert d["low"] == {"fill": 0} and d["high"] == {"fill": 255}
    assert len(json.dumps(d)) < 200
    back = round_trip(space)
    assert_box_equal(space, back)
    assert back.dtype == np.uint8
    assert is_image_space(back)


def test_box_non_uniform_bounds_round_trip():
    low = np.array([[-1.0, 0.0, -0.5], [2.0, -3.25, 0.1]], dtype=np.float32)
    high = low + np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    space = spaces.Box(low, high, dtype=np.float32)
    d = space_to_dict(space)
    assert "values" in d["low"] and len(d["low"]["values"]) == 6
    back = round_trip(space)
    assert_box_equal(space, back)  # float32 values survive exactly


def test_box_float64_non_uniform_round_trip_exact():
    low = np.array([0.1, 0.2, 1e-300], dtype=np.float64)
    space = spaces.Box(low, low + 1.0 / 3.0, dtype=np.float64)
    assert_box_equal(space, round_trip(space))


def test_box_infinite_bounds_round_trip():
    space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    d = space_to_dict(space)
    assert d["low"] == {"fill": "-inf"} and d["high"] == {"fill": "inf"}
    back = round_trip(space)
    assert_box_equal(space, back)
    assert np.all(np.isneginf(back.low)) and np.all(np.isposinf(back.high))


def test_box_mixed_infinite_bounds_round_trip():
    low = np.array([-np.inf, -1.0, 0.0], dtype=np.float32)
    high = np.array([np.inf, 1.0, np.inf], dtype=np.float32)
    space = spaces.Box(low, high, dtype=np.float32)
    back = round_trip(space)
    assert_box_equal(space, back)
    assert spaces_equal(space, back)


def test_box_integer_dtype_round_trip():
    space = spaces.Box(-5, 5, (2,), np.int32)
    back = round_trip(space)
    assert_box_equal(space, back)


@pytest.mark.parametrize("start", [0, 3, -2])
def test_discrete_round_trip(start):
    space = spaces.Discrete(7, start=start)
    back = round_trip(space)
    assert isinstance(back, spaces.Discrete)
    assert back.n == 7 and back.start == start
    assert back == space
    assert spaces_equal(space, back)


def test_discrete_start_matters():
    assert not spaces_equal(spaces.Discrete(3), spaces.Discrete(3, start=1))


def test_multidiscrete_round_trip_with_start():
    space = spaces.MultiDiscrete([3, 5, 2], start=[1, -2, 0])
    back = round_trip(space)
    assert isinstance(back, spaces.MultiDiscrete)
    np.testing.assert_array_equal(back.nvec, [3, 5, 2])
    np.testing.assert_array_equal(back.start, [1, -2, 0])
    assert back == space
    assert spaces_equal(space, back)


def test_multidiscrete_2d_round_trip():
    space = spaces.MultiDiscrete(np.array([[2, 3], [4, 5]]))
    back = round_trip(space)
    assert back.shape == (2, 2)
    assert back == space


def test_multidiscrete_dtype_round_trip():
    space = spaces.MultiDiscrete([3, 4], dtype=np.int32)
    back = round_trip(space)
    assert back.dtype == np.int32
    assert spaces_equal(space, back)


def test_multibinary_shape_round_trip():
    space = spaces.MultiBinary([2, 3])
    back = round_trip(space)
    assert isinstance(back, spaces.MultiBinary)
    assert back.shape == (2, 3)
    assert back == space
    assert spaces_equal(space, back)


def test_multibinary_int_round_trip():
    # MultiBinary(n) is the common form; it must still compare equal after a round trip,
    # otherwise a checkpoint for a MultiBinary(n) env no longer matches that env.
    space = spaces.MultiBinary(5)
    back = round_trip(space)
    assert isinstance(back, spaces.MultiBinary)
    assert back.shape == (5,)
    assert back == space
    assert spaces_equal(space, back)


def test_dict_round_trip_nested():
    space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (3, 16, 16), np.uint8),
            "vec": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "inner": spaces.Dict({"d": spaces.Discrete(4, start=1)}),
        }
    )
    back = round_trip(space)
    assert isinstance(back, spaces.Dict)
    assert set(back.spaces) == {"image", "vec", "inner"}
    assert_box_equal(space["image"], back["image"])
    assert_box_equal(space["vec"], back["vec"])
    assert back["inner"]["d"] == spaces.Discrete(4, start=1)
    assert spaces_equal(space, back)


def test_unsupported_space_errors():
    with pytest.raises(TypeError, match="cannot serialise"):
        space_to_dict(spaces.Tuple((spaces.Discrete(2),)))
    with pytest.raises(ValueError, match="unknown space description"):
        space_from_dict({"type": "Nope"})


# --------------------------------------------------------------------------- spaces_equal


def test_spaces_equal_box_tolerates_rounding():
    a = spaces.Box(np.float32(0.1), 1.0, (2,), np.float32)
    b = spaces.Box(low=np.full(2, 0.1 + 1e-9, np.float32), high=np.ones(2, np.float32))
    assert spaces_equal(a, b)


def test_spaces_equal_box_differences():
    base = spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert spaces_equal(base, spaces.Box(-1.0, 1.0, (3,), np.float32))
    assert not spaces_equal(base, spaces.Box(-1.0, 1.0, (4,), np.float32))
    assert not spaces_equal(base, spaces.Box(-1.0, 1.0, (3,), np.float64))
    assert not spaces_equal(base, spaces.Box(-1.0, 2.0, (3,), np.float32))
    assert not spaces_equal(base, spaces.Box(-2.0, 1.0, (3,), np.float32))
    inf = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    assert spaces_equal(inf, spaces.Box(-np.inf, np.inf, (3,), np.float32))
    assert not spaces_equal(inf, base)


def test_spaces_equal_different_types():
    assert not spaces_equal(spaces.Discrete(2), spaces.MultiBinary(2))
    assert not spaces_equal(spaces.Discrete(2), spaces.Box(0, 1, (1,)))
    assert not spaces_equal(spaces.MultiDiscrete([2, 2]), spaces.MultiDiscrete([2, 3]))


def test_spaces_equal_dict():
    a = spaces.Dict({"x": spaces.Box(0, 1, (2,)), "y": spaces.Discrete(3)})
    b = spaces.Dict({"y": spaces.Discrete(3), "x": spaces.Box(0, 1, (2,))})
    assert spaces_equal(a, b)
    assert not spaces_equal(a, spaces.Dict({"x": spaces.Box(0, 1, (2,))}))
    assert not spaces_equal(a, spaces.Dict({"x": spaces.Box(0, 1, (2,)), "y": spaces.Discrete(4)}))


# --------------------------------------------------------------------------- misc helpers


def test_flat_dim_and_is_image_space():
    assert flat_dim(spaces.Box(0, 1, (2, 3))) == 6
    assert flat_dim(spaces.Discrete(9)) == 1
    assert flat_dim(spaces.MultiDiscrete([[2, 3], [4, 5]])) == 4
    assert flat_dim(spaces.MultiBinary([2, 5])) == 10
    with pytest.raises(TypeError):
        flat_dim(spaces.Dict({"a": spaces.Discrete(2)}))
    assert is_image_space(spaces.Box(0, 255, (3, 8, 8), np.uint8))
    assert not is_image_space(spaces.Box(0, 1, (3, 8, 8), np.float32))
    assert not is_image_space(spaces.Box(0, 255, (8, 8), np.uint8))


def test_check_space_message():
    with pytest.raises(TypeError) as info:
        check_space(spaces.Discrete(2), (spaces.Box, spaces.Dict), "observation space", "Foo")
    msg = str(info.value)
    assert "Foo" in msg and "observation space" in msg and "Box, Dict" in msg
    check_space(spaces.Discrete(2), (spaces.Discrete,), "x", "Foo")  # no error
