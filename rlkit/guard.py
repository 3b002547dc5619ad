"""The non-finite guard: NaN or inf in what the env returns or in a gradient stops training with
a message naming where it came from, instead of silently training an all-NaN model.

Checks run where values arise: :func:`check_env` on every batch of observations and rewards
the env returns (float arrays only; integer pixels cannot be non-finite), :func:`check_step`
on every optimizer's gradients right before its step (which also names the loss terms of the
last backward that were non-finite), :func:`check_weights` before any checkpoint is written.
The policy is per context (:func:`policy`): ``"raise"`` (default) raises
:class:`NonFiniteError`; ``"skip"`` drops that one update with a warning and keeps training
(non-finite env data still raises: there is nothing to skip); ``"off"`` disables the checks.
Agents set it from ``AgentConfig.on_nonfinite`` for the duration of ``train()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

POLICIES = ("raise", "skip", "off")

log = logging.getLogger("rlkit")

_POLICY: contextvars.ContextVar[str] = contextvars.ContextVar("rlkit_nonfinite", default="raise")
#: the named values of the last loss backpropagated (for the message when a gradient is bad).
_LAST_LOSS: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "rlkit_last_loss", default=None
)
_SKIPPED = [0]
#: names for messages, given by the agents that register optimizers.
_LABELS: weakref.WeakKeyDictionary[torch.optim.Optimizer, str] = weakref.WeakKeyDictionary()


class NonFiniteError(RuntimeError):
    """A NaN or inf was found; the message names the source and the step."""


@contextlib.contextmanager
def policy(mode: str) -> Iterator[None]:
    """Use ``mode`` (``raise``, ``skip`` or ``off``) inside the block (training sets the
    agent's ``on_nonfinite`` for its duration)."""
    if mode not in POLICIES:
        raise ValueError(f"on_nonfinite must be one of {', '.join(POLICIES)}, got {mode!r}")
    token = _POLICY.set(mode)
    try:
        yield
    finally:
        _POLICY.reset(token)


def current() -> str:
    """The policy in force."""
    return _POLICY.get()


def skipped_updates() -> int:
    """Updates dropped by the ``skip`` policy in this process so far."""
    return _SKIPPED[0]


def _bad_count(array: np.ndarray) -> int:
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def check_env(obs: Any, rewards: np.ndarray, step: int) -> None:
    """Raise if the env returned a non-finite observation or reward (``step``: the global env
    step of this batch)."""
    if _POLICY.get() == "off":
        return
    rewards = np.asarray(rewards)
    if rewards.dtype.kind == "f" and not np.isfinite(rewards.sum()):
        _raise_env("reward", rewards, step)
    items = obs.items() if isinstance(obs, Mapping) else (("", obs),)
    for key, value in items:
        array = np.asarray(value)
        if array.dtype.kind == "f" and not math.isfinite(float(array.sum(dtype=np.float64))):
            _raise_env(f"observation{f'[{key!r}]' if key else ''}", array, step)


def _raise_env(what: str, array: np.ndarray, step: int) -> None:
    bad = ~np.isfinite(array)
    if not bad.any():  # the sum overflowed: every value is finite
        return
    envs = sorted({int(i) for i in np.argwhere(bad)[:, 0]}) if array.ndim else [0]
    raise NonFiniteError(
        f"the env returned a non-finite {what} at env step {step} (sub-env(s) {envs}, "
        f"{_bad_count(array)} value(s)); check the env or wrap it to clean its output"
    )


def note_loss(values: Mapping[str, Any]) -> None:
    """Remember the named values of the loss being backpropagated (cheap: no reads)."""
    _LAST_LOSS.set(values)


def _bad_terms() -> str:
    values = _LAST_LOSS.get()
    if not values:
        return ""
    bad = []
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            bad.append(f"{name}={number}")
    return f"; non-finite loss term(s) of the last backward: {', '.join(bad)}" if bad else ""


def label(optimizer: torch.optim.Optimizer, name: str) -> None:
    """Name ``optimizer`` in messages (e.g. ``"PPO optimizer 'policy'"``)."""
    _LABELS[optimizer] = name


def gradients_finite(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every gradient the optimizer is about to apply is finite (one reduction per
    tensor; an overflowing sum of finite values counts as non-finite, as it is garbage)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            grad = param.grad
            if grad is not None and not math.isfinite(float(grad.sum())):
                return False
    return True


def check_step(optimizer: torch.optim.Optimizer) -> bool:
    """Before ``optimizer.step()``: ``True`` to step; ``False`` to skip this update (the
    ``skip`` policy, gradients zeroed, with a warning); raises under ``raise``."""
    mode = _POLICY.get()
    if mode == "off" or gradients_finite(optimizer):
        return True
    where = _LABELS.get(optimizer) or (
        f"{type(optimizer).__name__} over {_count(optimizer)} parameter tensor(s)"
    )
    if mode == "skip":
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.zero_()
        _SKIPPED[0] += 1
        log.warning(
            "non-finite gradient in %s: update skipped (%d so far)%s",
            where,
            _SKIPPED[0],
            _bad_terms(),
        )
        return False
    raise NonFiniteError(
        f"non-finite gradient in {where}{_bad_terms()}; lower lr, clip gradients "
        "(max_grad_norm) or pass on_nonfinite='skip' to drop such updates"
    )


def _count(optimizer: torch.optim.Optimizer) -> int:
    return sum(len(group["params"]) for group in optimizer.param_groups)


def check_weights(modules: Mapping[str, nn.Module], what: str) -> None:
    """Raise if any parameter or buffer of ``modules`` is non-finite (never save a NaN
    model), naming the first few."""
    bad = []
    for name, module in modules.items():
        for key, tensor in module.state_dict().items():
            floating = isinstance(tensor, Tensor) and tensor.is_floating_point()
            if floating and not bool(torch.isfinite(tensor).all()):
                bad.append(f"{name}.{key}")
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NonFiniteError(
            f"refusing to write {what}: non-finite weights in {shown}; any earlier checkpoint "
            "is left as it was"
        )


__all__ = [
    "POLICIES",
    "NonFiniteError",
    "check_env",
    "check_step",
    "check_weights",
    "current",
    "gradients_finite",
    "label",
    "note_loss",
    "policy",
    "skipped_updates",
]
