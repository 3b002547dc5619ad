"""The compute backend: one explicit setting for how an agent's modules, losses and optimizers run.

``reference``
    Plain ``nn.Module`` forward passes and autograd. No NumPy and no private torch operation
    anywhere on the path: the code a reader reads is the code that runs.
``fast``
    Hand-written CPU kernels wherever a module declares one (the default actor-critic, ReLU MLP
    stacks, the tanh-Gaussian squash, NumPy acting for small batches); loss terms apply their
    closed-form per-sample derivatives instead of being differentiated; fused Adam steps.
    Anything without a kernel runs as in ``reference``, and the agent says so once per run.
``compile``
    The reference modules, with the single update (one minibatch's loss or one off-policy
    update) wrapped in ``torch.compile``; on a CUDA device ``mode="reduce-overhead"`` adds CUDA
    graphs, as LeanRL does for CleanRL.

Agents activate their backend around their own work (acting, collecting, updating,
evaluating) with :func:`use`; modules read it with :func:`active`. Outside an agent the
active backend is ``reference``, so exporting or calling a module directly runs plain torch.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Backend:
    """A compute backend: which optimisations modules, loss terms and optimizers may use."""

    #: the setting's value (``compute=...``).
    name: str
    #: modules may run their hand-written CPU kernels.
    kernels: bool
    #: loss terms contribute their closed-form derivatives instead of an autograd graph.
    closed_form: bool
    #: the single update is wrapped in ``torch.compile``.
    compile: bool
    #: one line for documentation and logs.
    description: str

    def __str__(self) -> str:
        return self.name


REFERENCE = Backend(
    "reference",
    kernels=False,
    closed_form=False,
    compile=False,
    description="plain nn.Module forward passes and autograd (no NumPy, no private torch ops)",
)
FAST = Backend(
    "fast",
    kernels=True,
    closed_form=True,
    compile=False,
    description="hand-written CPU kernels where a module has one, closed-form loss derivatives, "
    "fused Adam",
)
COMPILE = Backend(
    "compile",
    kernels=False,
    closed_form=False,
    compile=True,
    description="reference modules with the single update wrapped in torch.compile (CUDA "
    "graphs on a GPU)",
)

#: name -> backend.
BACKENDS: dict[str, Backend] = {b.name: b for b in (REFERENCE, FAST, COMPILE)}


def resolve(value: str | Backend, owner: str = "compute") -> Backend:
    """The backend named ``value`` (or ``value`` itself); a clear error for anything else."""
    if isinstance(value, Backend):
        return value
    backend = BACKENDS.get(str(value)) if isinstance(value, str) else None
    if backend is None:
        raise ValueError(
            f"{owner}={value!r}: expected one of {', '.join(BACKENDS)} (reference: plain "
            "autograd; fast: CPU kernels and closed-form loss derivatives; compile: "
            "torch.compile of the update)"
        )
    return backend


_ACTIVE: contextvars.ContextVar[Backend] = contextvars.ContextVar(
    "rlkit_compute_backend", default=REFERENCE
)


def active() -> Backend:
    """The backend of the agent whose work is running now (``reference`` outside agents)."""
    return _ACTIVE.get()


@contextmanager
def use(backend: Backend | str) -> Iterator[Backend]:
    """Make ``backend`` the active one for the enclosed block (restored afterwards)."""
    resolved = resolve(backend)
    token = _ACTIVE.set(resolved)
    try:
        yield resolved
    finally:
        _ACTIVE.reset(token)


def kernels_active() -> bool:
    """Whether modules may run hand-written kernels now: the active backend allows them and
    nothing is being traced, exported or compiled (those need standard operators)."""
    if not _ACTIVE.get().kernels:
        return False
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing())


def closed_form_active() -> bool:
    """Whether loss terms should contribute closed-form derivatives now (see
    :func:`kernels_active` for when tracing or compiling overrides the backend)."""
    if not _ACTIVE.get().closed_form:
        return False
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing())
