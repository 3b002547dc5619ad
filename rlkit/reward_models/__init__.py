"""Reward models for language-model RL (see :mod:`rlkit.reward_models.base`): rule-based
rewards, text metrics (chrF, BLEU), a frozen classifier, the KL penalty against the reference
model and a weighted composite. Importing this package imports no transformers (the
classifier loads it when built)."""

from rlkit.reward_models.base import (
    OPTIONAL_FIELDS,
    REWARD_MODELS,
    RewardModel,
    TextBatch,
    completion_totals,
)
from rlkit.reward_models.classifier import ClassifierReward
from rlkit.reward_models.composite import CompositeReward
from rlkit.reward_models.kl import ReferenceKLPenalty, token_kl
from rlkit.reward_models.metrics import BLEU, ChrF, sentence_bleu, sentence_chrf, tokenize_13a
from rlkit.reward_models.rules import ContainsReward, LengthReward, RegexReward

__all__ = [
    "BLEU",
    "OPTIONAL_FIELDS",
    "REWARD_MODELS",
    "ChrF",
    "ClassifierReward",
    "CompositeReward",
    "ContainsReward",
    "LengthReward",
    "ReferenceKLPenalty",
    "RegexReward",
    "RewardModel",
    "TextBatch",
    "completion_totals",
    "sentence_bleu",
    "sentence_chrf",
    "token_kl",
    "tokenize_13a",
]
