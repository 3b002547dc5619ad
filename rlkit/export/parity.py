"""Parity checks: an exported graph against the PyTorch acting path on random observations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlkit.export.acting import ActingPath

#: default batch sizes of the parity check (1, an odd size, a large one).
CHECK_BATCH_SIZES: tuple[int, ...] = (1, 7, 256)


class ParityError(AssertionError):
    """An exported graph does not reproduce the PyTorch acting path."""


@dataclass
class ParityReport:
    """How closely an export matches PyTorch over ``batch_sizes`` random batches."""

    target: str
    batch_sizes: tuple[int, ...]
    #: largest absolute difference of continuous actions (0.0 for integer actions).
    max_abs_diff: float
    #: integer action entries that differ (always 0 for continuous actions).
    mismatches: int
    total: int
    tolerance: float
    #: whether the actions are integers (compared exactly) rather than floats.
    integer: bool = False

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.max_abs_diff <= self.tolerance

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        if self.integer:
            detail = f"{self.mismatches} of {self.total} integer actions differ"
        else:
            detail = (
                f"max |diff| {self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}) over "
                f"{self.total} action values"
            )
        return f"{self.target} parity {verdict}: {detail}, batch sizes {list(self.batch_sizes)}"


def check_parity(
    acting: ActingPath,
    run: Callable[[list[np.ndarray]], np.ndarray],
    target: str,
    batch_sizes: Sequence[int] = CHECK_BATCH_SIZES,
    tolerance: float = 1e-5,
    seed: int = 0,
) -> ParityReport:
    """Compare ``run`` (the exported graph) with ``acting`` on random valid observations."""
    max_diff, mismatches, total, integer = 0.0, 0, 0, False
    acting = acting.eval()
    for i, batch in enumerate(batch_sizes):
        inputs = acting.example_inputs(batch, seed=seed + i)
        with torch.inference_mode():
            expected = acting(*inputs).cpu().numpy()
        got = np.asarray(run([x.numpy() for x in inputs]))
        if got.shape != expected.shape:
            raise ParityError(
                f"{target}: output shape {got.shape} != PyTorch's {expected.shape} at batch {batch}"
            )
        total += expected.size
        if np.issubdtype(expected.dtype, np.floating):
            diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
            max_diff = max(max_diff, diff)
        else:
            integer = True
            mismatches += int(np.sum(got.astype(np.int64) != expected.astype(np.int64)))
    return ParityReport(target, tuple(batch_sizes), max_diff, mismatches, total, tolerance, integer)
