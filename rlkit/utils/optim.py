"""Flat parameter buffers and the Adam that steps them."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from rlkit import guard
from rlkit.backends import optim_kernel
from rlkit.backends.capability import overridden
from rlkit.backends.setting import kernels_active
from rlkit.backends.torch_private import fused_adam_step, optimizer_hooks_present

from .compiling import eager_only

#: id(parameter) -> (parameter, its flat buffer, offset), weakly, for parameters laid out by
#: flatten_parameters (tensors compare elementwise, so they cannot key a WeakKeyDictionary).
_FLAT_VIEWS: dict[int, tuple[weakref.ref[Tensor], weakref.ref[nn.Parameter], int]] = {}


def adam(params: Iterable[nn.Parameter], lr: float, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel (one pass over all parameters) when every
    parameter supports it, else the default implementation; the maths is the same Adam."""
    params = [p for p in params if p.requires_grad]
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if fusable and "fused" not in kwargs and "foreach" not in kwargs:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr, **kwargs)


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move ``module``'s trainable parameters into one contiguous buffer and return it.

    Each parameter becomes a view into the returned flat parameter, and each ``.grad`` a view
    into the flat parameter's ``.grad``; autograd accumulates into those views in place. An
    optimizer over ``[flat]`` then updates every parameter with one kernel, and gradient
    clipping and zeroing are one operation each: the per-parameter Python overhead that
    dominates small networks disappears. Do this after moving the module to its device, and
    zero gradients with ``flat.grad.zero_()`` (``set_to_none`` would detach the views).
    """
    params: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    if not params:
        raise ValueError("flatten_parameters: the module has no trainable parameters")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(
            "flatten_parameters needs one dtype and one device, got "
            f"{sorted(map(str, dtypes))} on {sorted(map(str, devices))}"
        )
    total = sum(p.numel() for p in params)
    flat = nn.Parameter(torch.empty(total, dtype=params[0].dtype, device=params[0].device))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    ref = weakref.ref(flat)
    for key in [k for k, (p_ref, _, _) in _FLAT_VIEWS.items() if p_ref() is None]:
        del _FLAT_VIEWS[key]  # forget parameters that are gone
    with torch.no_grad():
        for p in params:
            n = p.numel()
            flat[offset : offset + n].copy_(p.reshape(-1))
            p.data = flat.data[offset : offset + n].view_as(p)
            p.grad = flat.grad[offset : offset + n].view_as(p)
            _FLAT_VIEWS[id(p)] = (weakref.ref(p), ref, offset)
            offset += n
    return flat


def flat_location(param: Tensor) -> tuple[nn.Parameter, int] | None:
    """``(flat buffer, offset)`` of a parameter laid out by :func:`flatten_parameters` (None
    if it was not, or if its buffer is gone or was replaced since)."""
    entry = _FLAT_VIEWS.get(id(param))
    if entry is None or entry[0]() is not param:
        return None
    flat = entry[1]()
    if flat is None or not _same_storage(param, flat):
        return None
    return flat, entry[2]


def _same_storage(a: Tensor, b: Tensor) -> bool:
    """Whether two tensors are views of one storage (the flat layout still holds)."""
    return bool(a.data.untyped_storage().data_ptr() == b.data.untyped_storage().data_ptr())


class FlatAdam(torch.optim.Adam):
    """``torch.optim.Adam`` for a few large tensors, e.g. one flat buffer (see
    :func:`flatten_parameters`): the fused single-pass kernel when ``fused`` (default: where the
    device supports it), plain per-tensor arithmetic when ``fused=False`` (the ``reference``
    backend). Same update and state layout either way, so checkpoints move between them."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        if not (lr > 0 and eps > 0 and all(0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"FlatAdam: invalid lr={lr}, betas={betas} or eps={eps}")
        params = list(params)
        if fused is None:
            fused = all(
                isinstance(p, Tensor) and p.is_floating_point() and p.device.type in ("cpu", "cuda")
                for p in params
            )
        kwargs: dict[str, Any] = {"fused": True} if fused else {"foreach": False}
        super().__init__(params, lr=lr, betas=betas, eps=eps, **kwargs)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One Adam step: the fused kernel called directly where that is exactly the public
        fused step (:func:`rlkit.backends.torch_private.fused_adam_step`), else
        ``torch.optim.Adam.step``."""
        if closure is None and fused_adam_step(self):
            return None
        return super().step(closure)


@eager_only
def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``; a :class:`FlatAdam` (whose ``step`` no subclass changed) with no
    step hooks registered calls its fused kernel directly, skipping torch's per-call profiling
    wrapper (~40 us in an update loop, more than the step itself). The non-finite guard
    (:mod:`rlkit.guard`) checks the gradients first and may skip or stop."""
    if not guard.check_step(optimizer):
        return
    if (
        isinstance(optimizer, FlatAdam)
        and optimizer.param_groups[0].get("fused")  # (plain Adam, e.g. reference: public step)
        and not overridden(optimizer, FlatAdam, "step")  # (a subclass's own step runs)
        and not optimizer_hooks_present(optimizer)
        and fused_adam_step(optimizer)
    ):
        return
    optimizer.step()


def set_fused(optimizer: torch.optim.Optimizer, fused: bool) -> None:
    """Switch an Adam optimizer between its fused kernel (where its parameters support one)
    and plain arithmetic; the state layout is the same. Other optimizers are left alone."""
    if not isinstance(optimizer, torch.optim.Adam):
        return
    for group in optimizer.param_groups:
        supported = all(
            p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in group["params"]
        )
        group["fused"] = bool(fused) and supported
        group["foreach"] = None if group["fused"] else False  # (as FlatAdam builds them)


@eager_only
def clip_grad_norm_(grad: Tensor, max_norm: float) -> Tensor:
    """Scale one gradient buffer so its 2-norm is at most ``max_norm`` (as
    ``torch.nn.utils.clip_grad_norm_``: coefficient ``max_norm / (norm + 1e-6)``, capped at 1).
    Returns the norm before clipping.

    On the ``fast`` backend a float32 CPU buffer is clipped in NumPy
    (:mod:`rlkit.backends.optim_kernel`). Otherwise, on the CPU the coefficient is computed as a
    Python float and the buffer is only touched when it is below 1 (reading the norm costs no
    device sync there); elsewhere the clamp stays on the device."""
    if kernels_active() and optim_kernel.applies(grad):
        return optim_kernel.clip_grad_norm_numpy(grad, max_norm)
    norm = torch.linalg.vector_norm(grad)
    if grad.device.type == "cpu":
        coef = max_norm / (float(norm) + 1e-6)
        if coef < 1.0:
            grad.mul_(coef)
        return norm
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm
