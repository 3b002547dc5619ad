"""Hyperparameters described from their dataclasses (what ``rlkit train ALGO --help`` lists)."""

from __future__ import annotations

import dataclasses

import pytest

import rlkit.agents  # noqa: F401  (registers the agents)
from rlkit.config.describe import describe_config, format_config_help
from rlkit.prototypes import AGENTS


@dataclasses.dataclass
class _Base:
    #: the learning rate, spread over
    #: two comment lines.
    lr: float = 1e-3
    # a plain comment is not a description
    steps: int = 5


@dataclasses.dataclass
class _Child(_Base):
    lr: float = 2e-3
    #: tuple-valued.
    sizes: tuple[int, ...] = (64, 64)


def test_fields_types_defaults_and_meanings() -> None:
    docs = {d.name: d for d in describe_config(_Child)}
    assert list(docs) == ["lr", "steps", "sizes"]
    assert docs["lr"].default == 2e-3  # the subclass's default...
    assert (
        docs["lr"].meaning == "the learning rate, spread over two comment lines."
    )  # ...base's doc
    assert docs["steps"].meaning == "" and docs["steps"].type == "int"
    assert docs["sizes"].type == "tuple[int, ...]" and docs["sizes"].default == (64, 64)
    text = format_config_help(_Child)
    assert "  --lr float (default 0.002)\n      the learning rate, spread over two" in text
    assert "--steps int (default 5)\n      (no description)" in text


def test_not_a_dataclass_is_named() -> None:
    with pytest.raises(TypeError, match="is not a dataclass"):
        describe_config(int)


@pytest.mark.parametrize("agent_id", sorted(AGENTS))
def test_every_hyperparameter_of_every_agent_says_what_it_means(agent_id: str) -> None:
    undocumented = [d.name for d in describe_config(AGENTS.get(agent_id).Config) if not d.meaning]
    assert undocumented == [], f"{agent_id}: add a `#:` comment above {undocumented}"
