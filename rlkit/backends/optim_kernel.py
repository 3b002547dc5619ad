"""The fast backend's gradient clipping: one global-norm clip of a flat float32 CPU gradient
buffer in NumPy.

In an update loop whose kernels work in NumPy, each torch call on the gradient buffer costs
several times what it does in isolation (about 10 us for a ``vector_norm`` of 9k numbers
between NumPy kernels, against 2 us in a loop of its own); the clip here makes no torch call
but the final wrap of the norm. Same coefficient as :func:`torch.nn.utils.clip_grad_norm_`
(``max_norm / (norm + 1e-6)``, capped at 1); the norm's float32 sum may differ from torch's in
the last bits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def applies(grad: Tensor) -> bool:
    """Whether :func:`clip_grad_norm_numpy` takes ``grad`` (a float32 CPU tensor that needs no
    gradient itself)."""
    return grad.dtype == torch.float32 and not grad.is_cuda and not grad.requires_grad


def clip_grad_norm_numpy(grad: Tensor, max_norm: float) -> Tensor:
    """Scale ``grad`` in place so its 2-norm is at most ``max_norm``; returns the norm before
    clipping as a 0-d tensor."""
    array = grad.numpy()
    norm = np.sqrt(np.vdot(array, array))
    coef = max_norm / (float(norm) + 1e-6)
    if coef < 1.0:
        array *= np.float32(coef)
    return torch.from_numpy(np.asarray(norm, dtype=np.float32))


__all__ = ["applies", "clip_grad_norm_numpy"]
