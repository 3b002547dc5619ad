"""Every private torch API rlkit touches, each behind a probe with a safe fallback.

- **Hook tables.** rlkit's kernels skip ``nn.Module.__call__``, so they must know whether a hook
  or a parametrization would have run there; torch offers public calls to register hooks but
  none to ask whether any are registered. :func:`hooks_present` reads torch's hook tables. It is
  probed once against the public registration API; if the probe fails (a torch version that
  stores hooks elsewhere), the fallback answers "hooks may be present", which makes kernels step
  aside and the reference path run: slower, never wrong.
- **The fused Adam kernel.** ``torch.optim.Adam(fused=True)`` ends in ``torch._fused_adam_``
  after ~30 us of bookkeeping per step (grouping tensors by device, capture checks), which is
  several percent of a small on-policy update. :func:`fused_adam_step` calls the kernel
  directly for the plain case (no weight decay, no amsgrad, no maximize, float32/64 on CPU or
  CUDA); it is probed once against ``torch.optim.Adam(fused=True)`` on the same numbers, and
  returns False (the caller then takes the public step) when the probe fails or the case is
  not the plain one.

- **Optimizer hook tables.** ``optimizer.step()`` is wrapped by torch for profiler labels and
  step hooks; in a tight update loop the wrapper costs more than the fused step itself.
  :func:`optimizer_hooks_present` reads the step-hook tables (probed against the public
  ``register_step_pre_hook`` / ``register_optimizer_step_pre_hook``; the fallback answers
  "hooked", so the public step runs).

- **ReLU's backward.** Masking a gradient by where a ReLU output is positive takes one ATen
  kernel, ``torch.ops.aten.threshold_backward`` (what autograd calls for ``relu``); the
  comparison-and-mask a Python expression needs costs 2-10x more on some CPU builds (a
  ``masked_fill_`` on a 256x256 float32 block measured 290 us against 26 us here).
  :func:`relu_backward` is probed once against ``grad * (out > 0)``; the fallback is
  ``grad * sign(out)``, exact for ReLU outputs (``sign(0) = 0``, ``sign(y > 0) = 1``).

- **Size facts for tracers.** A recurrent policy exported with a dynamic batch axis reads
  several inputs that share it; ``torch.export`` cannot prove that on its own and specialises
  the batch size. :func:`assume_equal_sizes` states it with ``torch._check`` (what
  torch.export's docs prescribe for this); probed once in eager mode (passes on equal sizes,
  raises on different ones); the fallback is a plain comparison that raises ``ValueError``
  (correct in eager mode; under torch.export the graph may then be specialised, which the
  export's parity check over several batch sizes reports).

``tests/test_torch_private.py`` covers each probe and each fallback.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn
from torch.optim import optimizer as _torch_optimizer

log = logging.getLogger("rlkit")

#: torch's process-wide hook tables (``torch.nn.modules.module.register_module_*_hook``).
_GLOBAL_HOOK_TABLES = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
#: per-module hook tables (``module.register_*_hook``).
_MODULE_HOOK_TABLES = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _global_hooks_present() -> bool:
    module = torch.nn.modules.module
    for name in _GLOBAL_HOOK_TABLES:  # noqa: SIM110 (a loop: cheaper than any() per call)
        if getattr(module, name):
            return True
    return False


def _module_hooks_present(module: nn.Module) -> bool:
    # A walk over the ``_modules`` dicts with plain loops: this runs on every kernel call,
    # where torch's ``modules()`` generator costs ~10x more for a small network.
    tables = _MODULE_HOOK_TABLES
    stack, seen = [module], set()
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        d = m.__dict__
        for name in tables:
            if d[name]:
                return True
        children = d["_modules"]
        if "parametrizations" in children:
            return True
        stack.extend(c for c in children.values() if c is not None)
    return False


@functools.cache
def hook_inspection_works() -> bool:
    """Probe: do the readers see hooks registered through torch's public API, and no hooks
    after they are removed? Cached; False means every answer falls back to "maybe hooked"."""
    try:
        if _global_hooks_present():  # a user hook is registered already: probe still works
            probe_global = True
        else:
            handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
            try:
                probe_global = _global_hooks_present()
            finally:
                handle.remove()
            probe_global = probe_global and not _global_hooks_present()
        layer = nn.Sequential(nn.Identity())  # (no parameters: draws nothing from torch's RNG)
        clean = not _module_hooks_present(layer)
        handle = layer.register_forward_pre_hook(lambda *a: None)
        seen = _module_hooks_present(layer)
        handle.remove()
        works = probe_global and clean and seen and not _module_hooks_present(layer)
    except (AttributeError, KeyError, TypeError):
        works = False
    if not works:
        log.info(
            "rlkit: cannot inspect torch module hooks in torch %s; hand-written kernels stay "
            "off (the reference path runs)",
            torch.__version__,
        )
    return works


def own_hooks_present(module: nn.Module) -> bool:
    """:func:`hooks_present` for ``module`` alone (not its submodules): a cheaper check for
    modules whose submodules do not run (e.g. a loss term called through a closed form)."""
    if not hook_inspection_works():
        return True
    d = module.__dict__
    return _global_hooks_present() or any(d[name] for name in _MODULE_HOOK_TABLES)


def hooks_present(module: nn.Module) -> bool:
    """Whether a call of ``module`` would run a hook or parametrization (its own, a
    submodule's or a global one) that a hand-written kernel would skip. True when that cannot
    be told (see :func:`hook_inspection_works`)."""
    if not hook_inspection_works():
        return True
    return _global_hooks_present() or _module_hooks_present(module)


@functools.cache
def threshold_backward_works() -> bool:
    """Probe: does ``torch.ops.aten.threshold_backward`` mask as ReLU's derivative does?"""
    try:
        gen = torch.Generator().manual_seed(0)
        grad = torch.randn(7, 5, generator=gen)
        out = torch.relu(torch.randn(7, 5, generator=gen))
        out[0, :2] = 0.0
        got = torch.ops.aten.threshold_backward(grad, out, 0.0)
        return bool(torch.equal(got, grad * (out > 0)))
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


def relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where the ReLU output ``out`` is positive, 0 elsewhere (a new tensor)."""
    if threshold_backward_works():
        result: torch.Tensor = torch.ops.aten.threshold_backward(grad, out, 0.0)
        return result
    return grad * torch.sign(out)


_OPTIMIZER_HOOK_TABLES = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
_GLOBAL_OPTIMIZER_HOOK_TABLES = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")


def _optimizer_hooks(optimizer: torch.optim.Optimizer) -> bool:
    module = _torch_optimizer
    if any(bool(getattr(module, name)) for name in _GLOBAL_OPTIMIZER_HOOK_TABLES):
        return True
    return any(bool(getattr(optimizer, name)) for name in _OPTIMIZER_HOOK_TABLES)


@functools.cache
def optimizer_hook_inspection_works() -> bool:
    """Probe: do the readers see step hooks registered through torch's public API?"""
    try:
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        clean = not _optimizer_hooks(opt)
        handle = opt.register_step_pre_hook(lambda *a: None)
        seen = _optimizer_hooks(opt)
        handle.remove()
        if any(bool(getattr(_torch_optimizer, n)) for n in _GLOBAL_OPTIMIZER_HOOK_TABLES):
            global_seen = True  # a user hook is registered already: the table is readable
        else:
            handle = _torch_optimizer.register_optimizer_step_post_hook(lambda *a: None)
            global_seen = _optimizer_hooks(opt)
            handle.remove()
        works = clean and seen and global_seen and not _optimizer_hooks(opt)
    except (AttributeError, TypeError):
        works = False
    return works


def optimizer_hooks_present(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` would run a step hook (its own or a global one); True
    when that cannot be told."""
    if not optimizer_hook_inspection_works():
        return True
    return _optimizer_hooks(optimizer)


@functools.cache
def fused_adam_works() -> bool:
    """Probe: does ``torch._fused_adam_`` exist and step exactly as
    ``torch.optim.Adam(fused=True)`` does? Cached."""
    try:
        kernel = torch._fused_adam_
        gen = torch.Generator().manual_seed(0)
        start = torch.randn(16, generator=gen)
        grads = [torch.randn(16, generator=gen) for _ in range(3)]
        public = nn.Parameter(start.clone())
        reference = torch.optim.Adam([public], lr=0.01, eps=1e-6, fused=True)
        param = start.clone()
        exp_avg, exp_avg_sq = torch.zeros(16), torch.zeros(16)
        step = torch.zeros((), dtype=torch.float32)
        for grad in grads:
            public.grad = grad.clone()
            reference.step()
            step += 1
            kernel(
                [param], [grad], [exp_avg], [exp_avg_sq], [], [step], amsgrad=False,
                lr=0.01, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-6, maximize=False,
            )  # fmt: skip
        state = reference.state[public]
        works = bool(
            torch.equal(param, public.detach())
            and torch.equal(exp_avg, state["exp_avg"])
            and torch.equal(exp_avg_sq, state["exp_avg_sq"])
        )
    except (AttributeError, RuntimeError, TypeError, NotImplementedError, KeyError):
        works = False
    if not works:
        log.info("rlkit: torch %s's fused Adam kernel is not usable directly; Adam steps take "
                 "the public path", torch.__version__)  # fmt: skip
    return works


#: Adam options whose steps are not the plain fused case this module calls directly.
_NOT_PLAIN_ADAM = (
    "weight_decay",
    "amsgrad",
    "maximize",
    "capturable",
    "differentiable",
    "decoupled_weight_decay",
)


def fused_adam_step(optimizer: torch.optim.Adam) -> bool:
    """One step of ``optimizer`` through ``torch._fused_adam_`` when that is exactly what its
    public fused step would do (see the module doc); returns False, having done nothing, when
    the caller must take the public step instead."""
    if not fused_adam_works():
        return False
    groups = optimizer.param_groups
    for group in groups:
        if not group.get("fused"):
            return False
        for key in _NOT_PLAIN_ADAM:
            if group.get(key):
                return False
    states = optimizer.state
    with torch.no_grad():
        for group in groups:
            beta1, beta2 = group["betas"]
            lr, eps = float(group["lr"]), group["eps"]
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                state = states[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                step = state["step"]
                if step.get_device() != param.get_device():  # (-1 on the CPU)
                    return False
                step += 1
                torch._fused_adam_(
                    [param], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [step],
                    amsgrad=False, lr=lr, beta1=beta1, beta2=beta2,
                    weight_decay=0.0, eps=eps, maximize=False,
                )  # fmt: skip
    return True


@functools.cache
def size_check_works() -> bool:
    """Probe: does ``torch._check(cond, msg)`` pass on True and raise on False?"""
    try:
        torch._check(True, lambda: "")
    except Exception:
        return False
    try:
        torch._check(False, lambda: "probe")
    except RuntimeError:
        return True
    except Exception:
        return False
    return False


def assume_equal_sizes(a: int, b: int, message: str) -> None:
    """Raise unless sizes ``a`` and ``b`` are equal; under torch.export the fact is recorded
    for the symbolic sizes (one batch axis shared by several inputs) instead of a guard."""
    if size_check_works():
        try:
            torch._check(a == b, lambda: message)
        except RuntimeError:
            raise ValueError(message) from None
        return
    if a != b:
        raise ValueError(message)


__all__ = [
    "assume_equal_sizes",
    "fused_adam_step",
    "fused_adam_works",
    "hook_inspection_works",
    "hooks_present",
    "optimizer_hooks_present",
    "own_hooks_present",
    "relu_backward",
    "size_check_works",
]
