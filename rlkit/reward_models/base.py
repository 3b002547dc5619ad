"""Reward-model contract: what scores a language model's completions.

A :class:`RewardModel` reads a :class:`TextBatch` (prompts, completions and, where a model
needs them, token ids, log-probabilities under the policy and the frozen reference, reference
texts, dataset fields) and returns one reward per completion ``[B]`` or one per completion
token ``[B, T]`` (zero outside ``completion_mask``; a KL penalty is per token). Parts are
combined by :class:`~rlkit.reward_models.CompositeReward`, whose parts are logged separately
(``reward/<name>``); agents add the parts up (per-token parts are summed over the completion
where an algorithm wants one number per completion, e.g. GRPO and RLOO).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from rlkit.configurable import Configurable
from rlkit.registry import Registry

#: the :class:`TextBatch` fields a reward model may ask for in :attr:`RewardModel.needs`.
OPTIONAL_FIELDS = (
    "references",
    "completion_ids",
    "completion_mask",
    "log_probs",
    "ref_log_probs",
    "metadata",
)


@dataclass
class TextBatch:
    """``B`` completions to score (the fields after ``completions`` may be None)."""

    #: the prompt each completion answers (for a dialogue, the formatted history).
    prompts: list[str]
    #: the generated texts, without the prompt and without special tokens.
    completions: list[str]
    #: texts a metric compares each completion with (one list per completion).
    references: list[list[str]] | None = None
    #: generated token ids ``[B, T]`` (right-padded).
    completion_ids: Tensor | None = None
    #: True on generated tokens (the end-of-sequence token included) ``[B, T]``.
    completion_mask: Tensor | None = None
    #: log-probability of each generated token under the policy at sampling ``[B, T]``.
    log_probs: Tensor | None = None
    #: log-probability of each generated token under the frozen reference model ``[B, T]``.
    ref_log_probs: Tensor | None = None
    #: the prompt dataset's other fields, one dict per completion (e.g. an intent label).
    metadata: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if len(self.prompts) != len(self.completions):
            raise ValueError(
                f"TextBatch: {len(self.prompts)} prompts but {len(self.completions)} completions"
            )

    def __len__(self) -> int:
        return len(self.completions)


class RewardModel(Configurable, nn.Module, ABC):
    """Base of every reward model (see the module doc).

    Subclasses implement :meth:`forward`; :attr:`needs` names the optional
    :class:`TextBatch` fields it reads (checked by :meth:`score` with one clear error), and
    :meth:`update` is called once per training iteration with the batch just scored (the
    adaptive KL coefficient moves there).
    """

    kind = "reward_model"
    #: optional :class:`TextBatch` fields this model reads (see :data:`OPTIONAL_FIELDS`).
    needs: ClassVar[tuple[str, ...]] = ()
    #: log key when no ``name`` is given.
    default_name: ClassVar[str] = "reward"

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = str(name) if name is not None else self.default_name

    def required_fields(self) -> tuple[str, ...]:
        """The optional fields this model (and, for a composite, every part) reads."""
        return tuple(self.needs)

    @abstractmethod
    def forward(self, batch: TextBatch) -> Tensor:
        """Rewards ``[B]`` (one per completion) or ``[B, T]`` (one per completion token)."""

    def score(self, batch: TextBatch) -> Tensor:
        """:meth:`forward` after checking the fields it needs; a float32 tensor ``[B]`` or
        ``[B, T]``."""
        missing = [f for f in self.required_fields() if getattr(batch, f, None) is None]
        if missing:
            raise ValueError(
                f"reward model {type(self).__name__} ({self.name!r}) needs the batch field(s) "
                f"{', '.join(missing)}, which this caller did not provide"
            )
        out = self(batch)
        if not isinstance(out, Tensor) or out.ndim not in (1, 2) or out.shape[0] != len(batch):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"reward model {type(self).__name__} ({self.name!r}) must return [B] or [B, T] "
                f"rewards for B={len(batch)} completions, got {shape}"
            )
        return out.float()

    def score_parts(self, batch: TextBatch) -> dict[str, Tensor]:
        """The weighted parts of the reward, ``{name: [B] or [B, T]}``, which add up to it
        (one part, :attr:`name`, unless the model is a composite)."""
        return {self.name: self.score(batch)}

    def update(self, batch: TextBatch) -> dict[str, float]:
        """Adapt after a training iteration scored ``batch`` (hook; e.g. the adaptive KL
        coefficient); returns values to log (``reward/<key>``)."""
        return {}

    def __call__(self, batch: TextBatch) -> Tensor:  # typed shortcut for forward
        out: Tensor = super().__call__(batch)
        return out

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def completion_totals(reward: Tensor, mask: Tensor | None) -> Tensor:
    """One number per completion: ``reward`` as it is when ``[B]``, else summed over the
    completion tokens (``mask``) when ``[B, T]``."""
    if reward.ndim == 1:
        return reward
    if mask is not None:
        reward = reward * mask.to(reward.dtype)
    return reward.sum(dim=1)


#: reward-model id -> class; ``@REWARD_MODELS.register("id")`` adds one.
REWARD_MODELS: Registry[RewardModel] = Registry("reward_model", RewardModel)

__all__ = [
    "OPTIONAL_FIELDS",
    "REWARD_MODELS",
    "RewardModel",
    "TextBatch",
    "completion_totals",
]
