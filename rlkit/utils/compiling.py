"""Marking code that must run eagerly, outside any ``torch.compile`` graph, at no cost when
nothing is being compiled."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def eager_only(fn: F) -> F:
    """``torch.compiler.disable(fn)`` while dynamo traces, ``fn`` itself otherwise.

    ``torch.compiler.disable`` wraps every call in dynamo's frame handling (a few microseconds
    each), which adds up on paths called several times per minibatch (zero_grad, clipping,
    optimizer steps). While tracing, ``is_compiling()`` is a constant ``True``, so the traced
    call goes to the disabled function (a graph break, run eagerly); in eager code the check is
    one cheap call.
    """
    disabled = torch.compiler.disable(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return disabled(*args, **kwargs)
        return fn(*args, **kwargs)

    return call  # type: ignore[return-value]


__all__ = ["eager_only"]
