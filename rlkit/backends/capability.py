"""Capability checks that decide whether a hand-written kernel may stand in for a module.

Kernels are chosen by what a module does, never by its exact type: a subclass keeps a kernel
as long as it keeps the methods the kernel reproduces (:func:`overridden`), and loses it, with
the reason reported, as soon as it changes one of them. Every check here returns a reason
string when the kernel does not apply and ``None`` when it does, so the agent can log why it
fell back.
"""

from __future__ import annotations

import torch
from torch import nn

from rlkit.backends.torch_private import hooks_present


def overridden(obj: object, owner: type, *methods: str) -> list[str]:
    """The names among ``methods`` whose implementation on ``obj``'s class is not
    ``owner``'s (a subclass changed them, so a kernel reproducing ``owner`` would skip that)."""
    cls = type(obj)
    return [m for m in methods if getattr(cls, m, None) is not getattr(owner, m, None)]


def plain_cpu_float32(module: nn.Module) -> str | None:
    """``None`` if every parameter of ``module`` is a contiguous float32 CPU tensor, every
    buffer is on the CPU and no hook or parametrization would run on a call; else why not."""
    for name, p in module.named_parameters():
        if p.device.type != "cpu":
            return f"parameter {name} is on {p.device}, kernels run on the CPU"
        if p.dtype != torch.float32:
            return f"parameter {name} is {p.dtype}, kernels take float32"
        if not p.is_contiguous():
            return f"parameter {name} is not contiguous"
    for name, b in module.named_buffers():
        if b.device.type != "cpu":
            return f"buffer {name} is on {b.device}, kernels run on the CPU"
    if hooks_present(module):
        return "a module hook or parametrization is registered (a kernel would skip it)"
    return None


__all__ = ["overridden", "plain_cpu_float32"]
