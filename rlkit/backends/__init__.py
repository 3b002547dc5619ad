"""Compute backends: ``reference``, ``fast`` and ``compile`` (see :mod:`rlkit.backends.setting`),
the capability checks that decide where a kernel applies, and the kernels themselves
(:mod:`~rlkit.backends.actor_critic_kernel`, :mod:`~rlkit.backends.mlp_kernel`,
:mod:`~rlkit.backends.squash_kernel`, :mod:`~rlkit.backends.optim_kernel`); every private torch
API rlkit uses lives in :mod:`~rlkit.backends.torch_private`, each behind a probe."""

from rlkit.backends.capability import overridden, plain_cpu_float32
from rlkit.backends.report import BackendReport, Choice
from rlkit.backends.setting import (
    BACKENDS,
    COMPILE,
    FAST,
    REFERENCE,
    Backend,
    active,
    closed_form_active,
    kernels_active,
    resolve,
    use,
)

__all__ = [
    "BACKENDS",
    "COMPILE",
    "FAST",
    "REFERENCE",
    "Backend",
    "BackendReport",
    "Choice",
    "active",
    "closed_form_active",
    "kernels_active",
    "overridden",
    "plain_cpu_float32",
    "resolve",
    "use",
]
