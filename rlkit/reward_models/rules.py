"""Rule-based rewards: a target word, a target length, a format (regular expression).

Cheap, exact and hard to game in unexpected ways; the usual first reward when fine-tuning a
language model with RL (e.g. the format rewards of DeepSeek-R1's GRPO training).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from torch import Tensor

from rlkit.config.rules import OneOf, Range, Rule, Satisfies, count, finite
from rlkit.reward_models._common import completion_lengths, per_completion
from rlkit.reward_models.base import REWARD_MODELS, RewardModel, TextBatch


def _words(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if not isinstance(value, Sequence) or not value:
        return False
    return all(isinstance(w, str) and w.strip() for w in value)


def _regex(value: Any) -> bool:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(str(e)) from None
    return True


WORDS = Satisfies(_words, "a non-empty string or a non-empty list of non-empty strings")
PATTERN = Satisfies(_regex, "a valid Python regular expression")


@REWARD_MODELS.register("contains")
class ContainsReward(RewardModel):
    """``reward`` when the completion contains one of ``words`` as a whole word, else 0.

    A word (or phrase) counts where it is neither preceded nor followed by a letter, digit or
    underscore, so ``"cat"`` is found in ``"the cat."`` but not in ``"category"``. ``[B]``.
    """

    default_name = "contains"
    argument_rules: ClassVar[dict[str, Rule]] = {
        "words": WORDS,
        "reward": finite(),
        "case_sensitive": OneOf((True, False)),
    }

    def __init__(
        self,
        words: list[str] | str,
        reward: float = 1.0,
        case_sensitive: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.words = [words] if isinstance(words, str) else [str(w) for w in words]
        self.reward = float(reward)
        self.case_sensitive = bool(case_sensitive)
        alternatives = "|".join(re.escape(w.strip()) for w in self.words)
        flags = 0 if self.case_sensitive else re.IGNORECASE
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)

    def forward(self, batch: TextBatch) -> Tensor:
        hits = [self.reward if self._pattern.search(c) else 0.0 for c in batch.completions]
        return per_completion(hits, batch)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, words={self.words!r}, reward={self.reward}"


Unit = Literal["words", "characters", "tokens"]


@REWARD_MODELS.register("length")
class LengthReward(RewardModel):
    """0 when the completion's length is within ``tolerance`` of ``target``, else
    ``-(|length - target| - tolerance) / target`` (a penalty growing linearly with the miss).

    ``unit``: ``"words"`` (whitespace-separated), ``"characters"`` or ``"tokens"`` (the
    generated tokens, from ``completion_mask``, end-of-sequence included). ``[B]``.
    """

    default_name = "length"
    argument_rules: ClassVar[dict[str, Rule]] = {
        "target": count(1, integer=True),
        "tolerance": Range(0, integer=True),
        "unit": OneOf(("words", "characters", "tokens")),
    }

    def __init__(
        self, target: int, tolerance: int = 0, unit: Unit = "words", name: str | None = None
    ) -> None:
        super().__init__(name)
        self.target = int(target)
        self.tolerance = int(tolerance)
        self.unit: Unit = unit

    def required_fields(self) -> tuple[str, ...]:
        return ("completion_mask",) if self.unit == "tokens" else ()

    def lengths(self, batch: TextBatch) -> list[int]:
        """The length of each completion in :attr:`unit`."""
        if self.unit == "tokens":
            assert batch.completion_mask is not None  # checked by score()
            owner = f"LengthReward ({self.name!r})"
            return [int(n) for n in completion_lengths(batch.completion_mask, owner, len(batch))]
        if self.unit == "characters":
            return [len(c) for c in batch.completions]
        return [len(c.split()) for c in batch.completions]

    def forward(self, batch: TextBatch) -> Tensor:
        miss = [max(abs(n - self.target) - self.tolerance, 0) for n in self.lengths(batch)]
        return per_completion([-m / self.target for m in miss], batch)

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, target={self.target}, tolerance={self.tolerance}, "
            f"unit={self.unit!r}"
        )


@REWARD_MODELS.register("format")
class RegexReward(RewardModel):
    """``reward`` when the completion matches the regular expression ``pattern``, else 0.

    The pattern is searched anywhere in the completion, or must match all of it with
    ``full_match=True`` (Python :mod:`re` syntax; inline flags such as ``(?s)`` apply).
    ``[B]``.
    """

    default_name = "format"
    argument_rules: ClassVar[dict[str, Rule]] = {
        "pattern": PATTERN,
        "reward": finite(),
        "full_match": OneOf((True, False)),
    }

    def __init__(
        self,
        pattern: str,
        reward: float = 1.0,
        full_match: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.pattern = pattern
        self.reward = float(reward)
        self.full_match = bool(full_match)
        self._regex = re.compile(pattern)

    def forward(self, batch: TextBatch) -> Tensor:
        match = self._regex.fullmatch if self.full_match else self._regex.search
        return per_completion([self.reward if match(c) else 0.0 for c in batch.completions], batch)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, pattern={self.pattern!r}, full_match={self.full_match}"


__all__ = ["ContainsReward", "LengthReward", "RegexReward"]
