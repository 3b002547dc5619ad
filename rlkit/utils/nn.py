"""Network helpers: activations by name, initialisation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from rlkit.config.rules import Satisfies


class Tanh(nn.Tanh):
    """``nn.Tanh`` (the name older checkpoints and code refer to)."""


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


#: the rule of the ``activation`` argument of encoders and policies (any letter case).
ACTIVATION = Satisfies(
    lambda name: isinstance(name, str) and name.lower() in _ACTIVATIONS,
    "one of " + ", ".join(repr(k) for k in _ACTIVATIONS) + " (any case)",
)


def activation_class(name: str) -> type[nn.Module]:
    """Activation module class by name (``tanh``, ``relu``, ``elu``, ``gelu``, ...)."""
    try:
        return _ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def orthogonal_init(module: nn.Module, gain: float = 2**0.5, bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias for Linear/Conv layers (the PPO convention)."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, nn.Parameter):
        nn.init.orthogonal_(weight, gain=gain)
    b = getattr(module, "bias", None)
    if isinstance(b, nn.Parameter):
        nn.init.constant_(b, bias)
    return module


@contextlib.contextmanager
def evaluation_mode(module: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode (``enabled``) for the block, then restore every submodule's
    own mode: deterministic acting uses the mean of noisy layers and the running statistics of
    normalisation layers."""
    if not enabled:
        yield module
        return
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
