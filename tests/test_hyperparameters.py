"""Hyperparameter configs: make_config, coerce and parse_value."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from rlkit.config import (
    UnknownHyperparameterError,
    check_known,
    coerce,
    config_to_dict,
    field_names,
    make_config,
    parse_value,
)


@dataclasses.dataclass
class DemoConfig:
    lr: float = 3e-4
    num_steps: int = 128
    anneal_lr: bool = False
    hidden_sizes: tuple[int, ...] = (64, 64)
    layers: list[float] = dataclasses.field(default_factory=lambda: [1.0])
    max_grad_norm: float | None = 0.5
    target_kl: float | None = None
    activation: str = "tanh"
    mode: Literal["a", "b"] = "a"


def cli(name: str, text: str) -> DemoConfig:
    """What the command line does: parse the flag value, then build the config."""
    return make_config(DemoConfig, None, {name: parse_value(text)}, "demo")


# --------------------------------------------------------------------------- make_config


def test_defaults_and_python_overrides():
    cfg = make_config(DemoConfig, None, {}, "demo")
    assert cfg == DemoConfig()
    cfg = make_config(DemoConfig, None, {"lr": 1e-3, "num_steps": 16}, "demo")
    assert cfg.lr == 1e-3 and cfg.num_steps == 16
    assert cfg.hidden_sizes == (64, 64)


def test_base_dataclass_and_mapping():
    base = DemoConfig(lr=0.1, num_steps=7)
    cfg = make_config(DemoConfig, base, {"num_steps": 9}, "demo")
    assert cfg.lr == 0.1 and cfg.num_steps == 9
    assert base.num_steps == 7  # base untouched
    cfg = make_config(DemoConfig, {"anneal_lr": "yes"}, {}, "demo")
    assert cfg.anneal_lr is True
    with pytest.raises(TypeError, match="DemoConfig or a mapping"):
        make_config(DemoConfig, 3, {}, "demo")  # type: ignore[arg-type]


def test_unknown_names_error_lists_valid_names():
    with pytest.raises(UnknownHyperparameterError) as info:
        make_config(DemoConfig, None, {"learning_rate": 1e-3, "lr": 1e-3, "zzz": 1}, "PPO")
    msg = str(info.value)
    assert msg.startswith("PPO:")
    assert "learning_rate" in msg and "zzz" in msg
    for name in field_names(DemoConfig):
        assert name in msg.split("valid:")[1]
    assert isinstance(info.value, TypeError)
    # unknown names in a base mapping are caught too
    with pytest.raises(UnknownHyperparameterError, match="typo"):
        make_config(DemoConfig, {"typo": 1}, {}, "demo")


def test_check_known_and_field_names():
    assert field_names(DemoConfig)[:3] == ["lr", "num_steps", "anneal_lr"]
    check_known(DemoConfig, ["lr", "mode"], "demo")
    with pytest.raises(UnknownHyperparameterError, match="valid: lr, num_steps"):
        check_known(DemoConfig, ["nope"], "demo")


# --------------------------------------------------------------------------- CLI strings


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("lr", "1e-3", 1e-3),
        ("lr", "0.01", 0.01),
        ("lr", "2", 2.0),
        ("num_steps", "64", 64),
        ("anneal_lr", "true", True),
        ("anneal_lr", "false", False),
        ("anneal_lr", "True", True),
        ("hidden_sizes", "[64, 64]", (64, 64)),
        ("hidden_sizes", "[32]", (32,)),
        ("hidden_sizes", "[]", ()),
        ("layers", "[1, 2.5]", [1.0, 2.5]),
        ("max_grad_norm", "null", None),
        ("max_grad_norm", "1e-3", 1e-3),
        ("max_grad_norm", "0.9", 0.9),
        ("target_kl", "0.02", 0.02),
        ("activation", "relu", "relu"),
        ("mode", "b", "b"),
    ],
)
def test_cli_strings_are_coerced(name, text, expected):
    value = getattr(cli(name, text), name)
    assert value == expected
    assert type(value) is type(expected)


def test_cli_int_in_scientific_notation():
    # "--num-steps 1e6" is a natural way to write a step count on the command line
    assert cli("num_steps", "1e6").num_steps == 1_000_000


def test_tuple_and_list_from_python_values():
    cfg = make_config(DemoConfig, None, {"hidden_sizes": [8, 4], "layers": (1, 2)}, "demo")
    assert cfg.hidden_sizes == (8, 4)
    assert cfg.layers == [1.0, 2.0]
    assert all(type(v) is float for v in cfg.layers)


def test_int_accepts_integral_float():
    assert make_config(DemoConfig, None, {"num_steps": 32.0}, "demo").num_steps == 32


def test_optional_fields_accept_none():
    cfg = make_config(DemoConfig, None, {"max_grad_norm": None, "target_kl": None}, "demo")
    assert cfg.max_grad_norm is None and cfg.target_kl is None
    assert coerce(None, float | None, "x") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lr", "fast"),
        ("lr", True),
        ("lr", None),
        ("num_steps", 1.5),
        ("num_steps", "abc"),
        ("num_steps", True),
        ("anneal_lr", "maybe"),
        ("anneal_lr", 2),
        ("hidden_sizes", 64),
        ("hidden_sizes", [64, "x"]),
        ("max_grad_norm", "lots"),
        ("activation", 3),
        ("mode", "c"),
    ],
)
def test_bad_types_raise_naming_the_field(name, value):
    with pytest.raises((TypeError, ValueError)) as info:
        make_config(DemoConfig, None, {name: value}, "demo")
    assert f"demo: {name}" in str(info.value)


# --------------------------------------------------------------------------- helpers


def test_parse_value():
    assert parse_value("1e-3") in ("1e-3", 1e-3)  # YAML 1.1 keeps it a string; coerce handles it
    assert parse_value("0.5") == 0.5
    assert parse_value("true") is True
    assert parse_value("[64, 64]") == [64, 64]
    assert parse_value("null") is None
    assert parse_value("relu") == "relu"
    assert parse_value("[unclosed") == "[unclosed"  # invalid YAML: kept as text


def test_coerce_direct():
    assert coerce("1e-3", float, "x") == 1e-3
    assert coerce(3, float, "x") == 3.0 and type(coerce(3, float, "x")) is float
    assert coerce("no", bool, "x") is False
    assert coerce("[1, 2]", tuple[int, ...], "x") == (1, 2)
    assert coerce("anything", object, "x") == "anything"  # unknown annotation: unchanged
    with pytest.raises(TypeError, match="where"):
        coerce("x", int, "where")


def test_config_to_dict_lists_tuples():
    d = config_to_dict(DemoConfig())
    assert d["hidden_sizes"] == [64, 64]
    assert d["lr"] == 3e-4
    # round trip through make_config
    assert make_config(DemoConfig, d, {}, "demo") == DemoConfig()
