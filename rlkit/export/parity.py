"""Parity checks: an exported graph against the PyTorch acting path on random observations
(feed-forward), or on random multi-step sequences with the state fed back (recurrent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlkit.export.acting import ActingPath, sample_observations

#: default batch sizes of the parity check (1, an odd size, a large one).
CHECK_BATCH_SIZES: tuple[int, ...] = (1, 7, 256)
#: steps of each sequence in the recurrent parity check.
SEQUENCE_STEPS = 20
#: chance that a row starts a new episode at a step of the recurrent parity check.
SEQUENCE_START_RATE = 0.2


class ParityError(AssertionError):
    """An exported graph does not reproduce the PyTorch acting path."""


@dataclass
class ParityReport:
    """How closely an export matches PyTorch over ``batch_sizes`` random batches (and, for a
    recurrent policy, sequences of ``steps`` steps)."""

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
    #: steps per sequence (1 for a feed-forward check).
    steps: int = 1
    #: largest absolute difference of the next-state tensors (None when feed-forward).
    state_max_abs_diff: float | None = None

    @property
    def ok(self) -> bool:
        state_ok = self.state_max_abs_diff is None or self.state_max_abs_diff <= self.tolerance
        return self.mismatches == 0 and self.max_abs_diff <= self.tolerance and state_ok

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        if self.integer:
            detail = f"{self.mismatches} of {self.total} integer actions differ"
        else:
            detail = (
                f"max |diff| {self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}) over "
                f"{self.total} action values"
            )
        if self.state_max_abs_diff is not None:
            detail += (
                f", state max |diff| {self.state_max_abs_diff:.2e} over {self.steps}-step "
                "sequences with the state fed back"
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
    if acting.recurrent:
        raise TypeError(
            "check_parity: the acting path is recurrent; use check_sequence_parity with a run "
            "returning every output (action, *next_state)"
        )
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


def check_sequence_parity(
    acting: ActingPath,
    run: Callable[[list[np.ndarray]], Sequence[np.ndarray]],
    target: str,
    batch_sizes: Sequence[int] = CHECK_BATCH_SIZES,
    tolerance: float = 1e-5,
    seed: int = 0,
    steps: int = SEQUENCE_STEPS,
) -> ParityReport:
    """Compare a recurrent export with ``acting`` over ``steps``-step sequences.

    ``run`` takes the graph inputs (observations, ``episode_start``, state) and returns every
    output (``action``, then the next state). For each batch size both start from the same
    random state; every step feeds random valid observations and random episode starts (each
    row starts an episode with probability 0.2), and each side gets back *its own* next state,
    so errors that build up over time count. Actions (exactly when integer) and next states
    are compared at every step.
    """
    if not acting.recurrent:
        raise TypeError("check_sequence_parity: the acting path is feed-forward; use check_parity")
    if steps < 1:
        raise ValueError(f"check_sequence_parity: steps must be >= 1, got {steps}")
    max_diff, state_diff, mismatches, total, integer = 0.0, 0.0, 0, 0, False
    acting = acting.eval()
    n_obs = len(acting.observation_names)
    for i, batch in enumerate(batch_sizes):
        rng = np.random.default_rng([seed, i])
        start = acting.example_inputs(batch, seed=seed + i)[n_obs + 1 :]  # a random state
        torch_state = tuple(start)
        graph_state = [x.numpy() for x in start]
        for t in range(steps):
            obs = [sample_observations(space, batch, rng) for space in acting.input_spaces()]
            starts = (rng.random(batch) < SEQUENCE_START_RATE).astype(np.float32)
            with torch.inference_mode():
                expected = acting(
                    *(torch.as_tensor(x) for x in obs), torch.as_tensor(starts), *torch_state
                )
            assert isinstance(expected, tuple)
            got = [np.asarray(x) for x in run([*obs, starts, *graph_state])]
            if len(got) != len(expected):
                raise ParityError(
                    f"{target}: {len(got)} outputs, expected {len(expected)} "
                    f"({', '.join(acting.output_names)})"
                )
            for name, g, e in zip(acting.output_names, got, expected, strict=True):
                if g.shape != tuple(e.shape):
                    raise ParityError(
                        f"{target}: output {name!r} has shape {g.shape}, PyTorch's is "
                        f"{tuple(e.shape)} (batch {batch}, step {t})"
                    )
            action, want = got[0], expected[0].cpu().numpy()
            total += want.size
            if np.issubdtype(want.dtype, np.floating):
                max_diff = max(max_diff, _max_abs_diff(action, want))
            else:
                integer = True
                mismatches += int(np.sum(action.astype(np.int64) != want.astype(np.int64)))
            for g, e in zip(got[1:], expected[1:], strict=True):
                state_diff = max(state_diff, _max_abs_diff(g, e.cpu().numpy()))
            torch_state = tuple(expected[1:])
            graph_state = got[1:]
    return ParityReport(
        target,
        tuple(batch_sizes),
        max_diff,
        mismatches,
        total,
        tolerance,
        integer,
        steps=steps,
        state_max_abs_diff=state_diff,
    )


def _max_abs_diff(got: np.ndarray, expected: np.ndarray) -> float:
    if got.size == 0:
        return 0.0
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return float(np.nan_to_num(diff, nan=np.inf).max())
