"""Helpers the reward models share: where a batch lives and its references, checked."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rlkit.reward_models.base import TextBatch

_TENSOR_FIELDS = ("completion_mask", "completion_ids", "log_probs", "ref_log_probs")


def batch_device(batch: TextBatch) -> torch.device:
    """The device of the batch's first tensor field (CPU when it holds only texts), so a
    text-only reward lands where the agent's tensors are."""
    for field in _TENSOR_FIELDS:
        value = getattr(batch, field)
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


def per_completion(values: Sequence[float], batch: TextBatch) -> Tensor:
    """``values`` as a float32 ``[B]`` tensor on :func:`batch_device`."""
    return torch.tensor(list(values), dtype=torch.float32, device=batch_device(batch))


def references_of(batch: TextBatch, owner: str) -> list[list[str]]:
    """``batch.references`` checked: one non-empty list of strings per completion (a bare
    string counts as one reference); ``owner`` names the model in the error."""
    references = batch.references
    if references is None:
        raise ValueError(
            f"{owner} needs the batch field references, which this caller did not provide"
        )
    if len(references) != len(batch):
        raise ValueError(
            f"{owner}: batch.references has {len(references)} entries for {len(batch)} "
            "completions (one list of reference texts per completion)"
        )
    out: list[list[str]] = []
    for i, refs in enumerate(references):
        texts = [refs] if isinstance(refs, str) else list(refs)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                f"{owner}: batch.references[{i}] must be a non-empty list of strings, got {refs!r}"
            )
        out.append(texts)
    return out


def completion_lengths(mask: Tensor, owner: str, batch_size: int) -> Tensor:
    """The number of completion tokens per row of ``mask`` ``[B, T]`` (checked shape)."""
    if mask.ndim != 2 or mask.shape[0] != batch_size:
        raise ValueError(
            f"{owner}: completion_mask must be [B, T] with B={batch_size}, got {tuple(mask.shape)}"
        )
    return mask.to(torch.bool).sum(dim=1)
